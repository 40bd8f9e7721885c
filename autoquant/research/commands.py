"""``autoquant backtest`` and ``autoquant replay``: arguments checked, then the work, then the report.

Every operator mistake (an unknown strategy class, wrong parameters, unsorted, duplicated or NaN bars,
``--from`` after ``--to``, a non-empty ``--out``) is an ``AutoquantError`` raised before anything is
written; the CLI turns it into one line and exit 2.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TextIO

from autoquant.domain.values import to_ns
from autoquant.errors import AutoquantError
from autoquant.logs import configure_logging
from autoquant.logs.settings import LoggingSettings
from autoquant.research import artifacts, replay
from autoquant.research.bars import BarSummary, check_bars
from autoquant.research.progress import Progress
from autoquant.research.results import backtest_result
from autoquant.runtime.config import Config
from autoquant.runtime.daemon import prefer_loop_latency
from autoquant.strategies import build_strategies


def parse_day(text: str, flag: str, *, end: bool = False) -> datetime:
    """``2024-01-31`` (the whole day, for ``--to``) or an ISO-8601 time with a timezone; UTC."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = datetime.fromisoformat(raw).replace(tzinfo=UTC)
            return day + timedelta(days=1, microseconds=-1) if end else day
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise AutoquantError(f"{flag} {text!r} is not a date: write YYYY-MM-DD or an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise AutoquantError(f"{flag} {text!r} has no timezone: add 'Z' or an offset such as '+00:00'")
    return moment.astimezone(UTC)


def window(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    start = None if not args.start else parse_day(args.start, "--from")
    end = None if not args.end else parse_day(args.end, "--to", end=True)
    if start is not None and end is not None and start > end:
        raise AutoquantError(f"--from {args.start} is after --to {args.end}: swap them")
    return start, end


def _out_dir(args: argparse.Namespace) -> Path | None:
    if not args.out:
        return None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise AutoquantError(f"--out {out} is a file: give a directory (it is created if missing)")
    if out.exists() and any(out.iterdir()):
        if not args.force:
            raise AutoquantError(f"--out {out} exists and is not empty: choose another, or add --force")
        strangers = sorted(p.name for p in out.iterdir() if p.name not in artifacts.OUTPUTS)
        if strangers:
            raise AutoquantError(
                f"--out {out} holds files a backtest did not write ({', '.join(strangers[:3])}): "
                "--force only replaces a previous backtest's output; choose another directory"
            )
    return out


def inputs_sha256(bars_sha: str, config: Config, strategies: list[Any], extra: dict[str, Any]) -> str:
    """SHA-256 of the bars, what the config says about the run, and the code version."""
    try:
        code = version("autoquant")
    except PackageNotFoundError:
        code = "unknown"
    sources = []
    for strategy in strategies:
        path = inspect.getsourcefile(type(strategy))
        sources.append(
            hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else type(strategy).__name__
        )
    body = {
        "bars": bars_sha,
        "strategies": [s.model_dump(mode="json") for s in config.strategies],
        "risk": config.risk.model_dump(mode="json"),
        "paper": config.paper.model_dump(mode="json", exclude={"state_path"}),
        "bar_seconds": config.marketdata.bar_seconds,
        "code": code,
        "strategy_sources": sources,
    } | extra
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def cmd_backtest(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    start, end = window(args)
    target = _out_dir(args)
    bars_path = Path(args.bars) if args.bars else config.marketdata.csv_path
    if bars_path is None:
        raise AutoquantError("no bars: pass --bars PATH, or set [marketdata] csv_path in the config")
    strategies = build_strategies(config.strategies, config.source)  # a bad strategy fails here
    if not strategies:
        raise AutoquantError("the config has no [[strategies]]: nothing to backtest")
    summary = check_bars(bars_path, config.marketdata.bar_seconds, start, end)
    sha = inputs_sha256(
        summary.sha256,
        config,
        strategies,
        {
            "from": None if start is None else start.isoformat(),
            "to": None if end is None else end.isoformat(),
        },
    )
    if target is not None:
        target.mkdir(parents=True, exist_ok=True)
        for name in artifacts.OUTPUTS:
            (target / name).unlink(missing_ok=True)
        return _backtest_in(target, config, args, summary, start, end, sha, out)
    scratch = Path(tempfile.mkdtemp(prefix="autoquant-backtest-"))
    try:
        return _backtest_in(scratch, config, args, summary, start, end, sha, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _backtest_in(
    workdir: Path,
    config: Config,
    args: argparse.Namespace,
    summary: BarSummary,
    start: datetime | None,
    end: datetime | None,
    sha: str,
    out: TextIO,
) -> int:
    prefer_loop_latency()  # as the daemon runs: the ledger's threads hand the GIL back sooner
    progress = Progress(summary.count, sys.stderr)
    logging = configure_logging(
        LoggingSettings(path=workdir / "backtest.log", level="warning"), renderer_process=False
    )
    try:
        result, curve, ledger_path = backtest_result(
            config, summary, workdir, start=start, end=end, inputs_sha256=sha, on_bar=progress.update
        )
    finally:
        logging.close()
        progress.close()
    if args.out:
        artifacts.write_all(workdir, result, curve)
    if args.json:
        out.write(json.dumps(result, sort_keys=True) + "\n")
    else:
        out.write(artifacts.one_line(result, curve.first_ns, curve.last_ns) + "\n")
        if args.out:
            out.write(f"report: {workdir / 'report.html'}; ledger: {ledger_path}\n")
    return 0


def add_backtest_parser(sub: Any) -> None:
    """Register ``backtest`` on the CLI's subparsers (operator/cli.py calls this)."""
    command = sub.add_parser(
        "backtest", help="run the strategies through the production path on recorded bars"
    )
    command.add_argument("--config", default=argparse.SUPPRESS, help="TOML config file")
    command.add_argument(
        "--bars", help="a CSV file or a folder of SYMBOL.csv (default [marketdata] csv_path)"
    )
    command.add_argument("--from", dest="start", help="first bar start to use (YYYY-MM-DD or ISO-8601)")
    command.add_argument("--to", dest="end", help="last bar start to use (YYYY-MM-DD: the whole day)")
    command.add_argument("--out", help="directory for ledger.db, report.json/html, trades.csv, equity.png")
    command.add_argument("--json", action="store_true", help="print the report as one JSON object")
    command.add_argument("--force", action="store_true", help="replace a previous backtest's --out")
    command.set_defaults(handler=cmd_backtest)


def cmd_replay(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """Exit 0 when every decision replays identically, 1 with a table of the differences."""
    start, end = window(args)
    path = config.ledger.path
    if not path.is_file():
        raise AutoquantError(f"no ledger at {path}: pass --ledger PATH (a live daemon's, or a copy)")
    strategies = build_strategies(config.strategies, config.source)
    outcome = replay.replay(
        path, strategies, None if start is None else to_ns(start), None if end is None else to_ns(end)
    )
    skipped = (
        f"; {outcome.not_replayable} recorded before the ledger kept what strategies saw, not replayed"
        if outcome.not_replayable
        else ""
    )
    if not outcome.differences:
        out.write(f"replay: {outcome.decisions} decisions, no difference{skipped}\n")
        return 0
    out.write(replay.table(outcome.differences) + "\n")
    out.write(f"replay: {outcome.decisions} decisions, {len(outcome.differences)} differences{skipped}\n")
    return 1


def add_replay_parser(sub: Any) -> None:
    command = sub.add_parser(
        "replay", help="rerun the strategies on the bars a ledger's decisions saw, and diff them"
    )
    command.add_argument("--config", default=argparse.SUPPRESS, help="TOML config file")
    command.add_argument("--ledger", default=argparse.SUPPRESS, help="the ledger to replay")
    command.add_argument("--from", dest="start", help="first bar time to replay (YYYY-MM-DD or ISO-8601)")
    command.add_argument("--to", dest="end", help="last bar time to replay (YYYY-MM-DD: the whole day)")
    command.set_defaults(handler=cmd_replay)


def register(sub: Any) -> None:
    """Register the research commands on the CLI's subparsers (operator/cli.py calls this)."""
    add_backtest_parser(sub)
    add_replay_parser(sub)
