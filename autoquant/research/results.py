"""A backtest run and its report, as one call: ``autoquant backtest`` and the API's backtest jobs both
run the whole path (``run_backtest``) and then read their report off the backtest's own ledger."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from autoquant.domain.bars import Bar
from autoquant.research import report
from autoquant.research.backtest import FILL_RULE, backtest_config, run_backtest
from autoquant.research.bars import BarSummary, check_bars, stream_bars
from autoquant.research.report import EquityCurve
from autoquant.runtime.config import Config


def backtest_result(
    config: Config,
    summary: BarSummary,
    workdir: Path,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    inputs_sha256: str = "",
    on_bar: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], EquityCurve, Path]:
    """Run ``config``'s strategies over the bars in ``workdir``; (report, equity curve, ledger path)."""
    run_config = backtest_config(config, summary, workdir)
    outcome = run_backtest(run_config, summary, start=start, end=end, on_bar=on_bar)
    ledger_path = run_config.ledger.path
    fills = report.ledger_fills(ledger_path)
    trades, open_positions = report.round_trips(fills)
    bars = stream_bars(summary.files, run_config.marketdata.bar_seconds, start, end)
    curve = report.equity_curve(bars, fills, run_config.paper.starting_cash)
    result = report.summary(
        trades=trades,
        open_positions=open_positions,
        fills=fills,
        curve=curve,
        bars=outcome.bars,
        decisions=report.decision_counts(ledger_path),
        fill_rule=FILL_RULE,
        inputs_sha256=inputs_sha256,
        wall_s=outcome.wall_s,
    )
    return result, curve, ledger_path


def write_bar_files(bars: Sequence[Bar], folder: Path) -> Path:
    """``bars`` as the backtest's input: one ``SYMBOL.csv`` per symbol (timestamp = the bar's start)."""
    folder.mkdir(parents=True, exist_ok=True)
    by_symbol: dict[str, list[Bar]] = {}
    for bar in bars:
        by_symbol.setdefault(bar.symbol, []).append(bar)
    for symbol, rows in by_symbol.items():
        with (folder / f"{symbol}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp", "open", "high", "low", "close", "volume"])
            for bar in rows:
                writer.writerow(
                    [bar.open_time.isoformat(), bar.open, bar.high, bar.low, bar.close, bar.volume]
                )
    return folder


def backtest_of_bars(config: Config, bars: Sequence[Bar], workdir: Path) -> dict[str, Any]:
    """The report of a backtest of ``config`` over ``bars`` (the API's jobs), run in ``workdir``."""
    summary = check_bars(write_bar_files(bars, workdir / "bars"), config.marketdata.bar_seconds)
    result, _, _ = backtest_result(config, summary, workdir)
    return result
