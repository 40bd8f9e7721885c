"""The backtest runs the production path and reproduces an independent computation, trade for trade.

The independent computation below is written from the rule alone (long-only SMA 10/20 crossover on
the closes, next-open fills, no fees or slippage), over Google's real daily bars that matplotlib
ships; it shares no code with the strategy, the exchange or the report.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from tests.research.rig import SMA, backtest_json, goog_rows, write_bars, write_config


def expected_trades(rows: list[tuple[str, ...]], fast: int, slow: int) -> list[tuple[str, str, str, str]]:
    """(entry day, entry price, exit day, exit price) of every closed long trade."""
    closes = [Decimal(row[4]) for row in rows]
    opens = [Decimal(row[1]) for row in rows]
    days = [row[0][:10] for row in rows]

    def mean(k: int, n: int) -> Decimal:
        window = closes[k - n + 1 : k + 1]
        return sum(window, Decimal(0)) / n

    trades, long_since = [], None
    for k in range(slow, len(rows) - 1):  # a signal on the last bar has no next open to fill at
        before = mean(k - 1, fast) - mean(k - 1, slow)
        now = mean(k, fast) - mean(k, slow)
        if long_since is None and before <= 0 < now:
            long_since = k + 1
        elif long_since is not None and before >= 0 > now:
            trades.append((days[long_since], str(opens[long_since]), days[k + 1], str(opens[k + 1])))
            long_since = None
    return trades


def test_sma_cross_backtest_matches_an_independent_next_open_computation(tmp_path: Path) -> None:
    """sma_cross 10/20 over GOOG daily bars: every round trip matches the rule computed by hand."""
    rows = goog_rows()
    bars = write_bars(tmp_path / "GOOG.csv", rows)
    config = write_config(tmp_path / "sma.toml", bars, SMA)
    result = backtest_json("--config", str(config))
    want = expected_trades(rows, fast=10, slow=20)
    # A bar stamped D (its start) closes at D+1: the fill is the open of bar D, seen at D+1.
    got = [
        (
            trade["entry_time"][:10],
            trade["entry_price"],
            trade["exit_time"][:10],
            trade["exit_price"],
        )
        for trade in result["trades"]
    ]
    shifted = [(_next_day(e), Decimal(ep), _next_day(x), Decimal(xp)) for e, ep, x, xp in want]
    assert [(e, Decimal(ep), x, Decimal(xp)) for e, ep, x, xp in got] == shifted
    assert len(want) >= 15, "the series crosses often enough to make the comparison mean something"
    pnl = sum((Decimal(xp) - Decimal(ep) for _, ep, _, xp in want), Decimal(0))
    assert Decimal(result["total_pnl"]) == pnl
    assert result["fees"] == "0.0000" or Decimal(result["fees"]) == 0
    assert result["bars"] == len(rows)


def _next_day(day: str) -> str:
    """The UTC date a bar starting on ``day`` closes (bars are a calendar day long)."""
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
