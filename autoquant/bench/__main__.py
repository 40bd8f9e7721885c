"""``python -m autoquant.bench [--quick]``: every group in turn, then one JSON line on stdout.

Progress goes to stderr; the last line on stdout is the JSON object, also written to
``.bench/latest.json``. A group that fails is reported in ``notes`` with its keys null, so one broken
path does not hide the other numbers (the exit status is then 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import traceback
from collections.abc import Callable
from typing import Any

from autoquant.bench import (
    api_load,
    backtest_speed,
    backup_lag,
    ledger_writes,
    logging_cost,
    risk_latency,
    startup,
    throughput,
    tick_to_submit,
)
from autoquant.bench.common import BENCH_DIR, Sizes, progress
from autoquant.bench.report import final_report
from autoquant.runtime.daemon import prefer_loop_latency

#: Each group, and the keys it fills (null when the group fails).
GROUPS: list[tuple[str, Callable[[Sizes], Any], tuple[str, ...]]] = [
    (
        "ledger writes",
        lambda sizes: asyncio.run(ledger_writes.run(sizes)),
        (
            "sqlite_raw_commit_per_s",
            "sqlite_raw_commit_p99_ms",
            "ledger_append_per_s",
            "ledger_vs_raw",
            "thread_hop_p50_us",
            "ledger_vs_raw_offloop_ceiling",
            "ledger_append_concurrent_per_s",
            "concurrent_vs_raw",
            "concurrent_appends_per_commit",
        ),
    ),
    ("risk check", risk_latency.run, ("risk_check_p50_us", "risk_check_p99_us")),
    (
        "logging cost",
        lambda sizes: asyncio.run(logging_cost.run(sizes)),
        (
            "log_calls_per_s",
            "log_lines_written_per_s",
            "loop_lag_p99_ms_quiet",
            "loop_lag_p99_ms_logging",
            "logging_lag_ratio",
            "logging_lines_per_s_during_lag",
            "log_records_dropped",
        ),
    ),
    (
        "tick to submit",
        lambda sizes: asyncio.run(tick_to_submit.run(sizes)),
        ("tick_to_submit_p50_ms", "tick_to_submit_p99_ms"),
    ),
    (
        "api clients",
        lambda sizes: asyncio.run(api_load.run(sizes)),
        (
            "tick_to_submit_p99_ms_quiet",
            "tick_to_submit_p99_ms_api_clients",
            "api_clients_tick_p99_ratio",
            "loop_lag_p99_ms_quiet_api",
            "loop_lag_p99_ms_api_clients",
            "api_clients_loop_lag_ratio",
            "api_requests_per_s",
        ),
    ),
    ("start-up", startup.run, ("startup_ready_s", "rss_mb")),
    (
        "backup",
        lambda sizes: asyncio.run(backup_lag.run(sizes)),
        (
            "backup_loop_lag_p99_ms",
            "backup_loop_lag_max_ms",
            "backup_loop_lag_p99_ms_quiet",
            "backup_s",
            "backup_mb",
            "backup_writes_during",
        ),
    ),
    (
        "throughput",
        lambda sizes: asyncio.run(throughput.run(sizes)),
        ("orders_per_s_paper_inprocess", "orders_per_s_paper_server"),
    ),
    (
        "backtest",
        backtest_speed.run,
        (
            "backtest_bars",
            "backtest_bars_per_s",
            "backtest_loop_turns_per_bar",
            "backtest_floor_us",
            "backtest_floor_bars_per_s",
            "backtest_rss_mb",
            "backtest_rss_mb_tenth",
            "backtest_vs_numpy",
            "backtest_same_trades_as_numpy",
            "backtest_stream_bars",
            "backtest_stream_rss_mb",
        ),
    ),
]

NOTES = [
    "ledger_append_per_s: Ledger.record_decision of a hold decision, one await at a time (every bar of"
    " every strategy records one, so it is the most frequent durable write)",
    "ledger_append_concurrent_per_s: the same with 64 tasks appending in a loop (asyncio.gather)",
    "tick_to_submit: driven through the real StrategyWorker, RiskGate (at decision and pre-submit) and"
    " ExecutionWorker on the in-process paper exchange; the clock stops when broker.submit is entered",
    "orders_per_s: 16 producers reserve + submit_soon; done when the ledger shows FILLED",
    "scratch ledgers live under .bench/ (the repository's disk), not /tmp",
]


def run_all(sizes: Sizes) -> tuple[dict[str, Any], list[str], bool]:
    results: dict[str, Any] = {}
    notes = list(NOTES)
    ok = True
    for name, group, keys in GROUPS:
        progress(f"{name}…")
        started = time.perf_counter()
        try:
            measured = dict(group(sizes))
        except Exception as error:  # one broken group must not hide the others' numbers
            ok = False
            traceback.print_exc()
            notes.append(f"{name} failed: {error!r}")
            measured = dict.fromkeys(keys)
        notes.extend(measured.pop("notes", []))
        results.update(measured)
        progress(f"{name} took {time.perf_counter() - started:.1f}s")
    return results, notes, ok


def main(argv: list[str] | None = None, sizes: Sizes | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoquant.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes: under a minute")
    args = parser.parse_args(argv)
    chosen = sizes or (Sizes.reduced() if args.quick else Sizes.full())
    results, notes, ok = run_all(chosen)
    report = final_report(results, notes, chosen.quick)
    line = json.dumps(report, sort_keys=False, default=str)
    BENCH_DIR.mkdir(exist_ok=True)
    (BENCH_DIR / "latest.json").write_text(line + "\n", encoding="utf-8")
    print(line, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    prefer_loop_latency()  # measure the interpreter as the daemon runs it (runtime/daemon.py)
    raise SystemExit(main())
