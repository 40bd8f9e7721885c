"""Smoke test of ``make bench``: the quick bench at a tiny size prints one JSON line with every key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

REQUIRED = {
    "sqlite_raw_commit_per_s",
    "ledger_append_per_s",
    "ledger_vs_raw",
    "ledger_append_concurrent_per_s",
    "concurrent_vs_raw",
    "concurrent_appends_per_commit",
    "prototype_vs_raw",
    "ledger_vs_prototype",
    "risk_check_p50_us",
    "risk_check_p99_us",
    "tick_to_submit_p50_ms",
    "tick_to_submit_p99_ms",
    "tick_to_submit_p99_ms_quiet",
    "tick_to_submit_p99_ms_api_clients",
    "loop_lag_p99_ms_api_clients",
    "api_clients_tick_p99_ratio",
    "startup_ready_s",
    "rss_mb",
    "orders_per_s_paper_inprocess",
    "orders_per_s_paper_server",
    "log_calls_per_s",
    "log_lines_written_per_s",
    "loop_lag_p99_ms_quiet",
    "loop_lag_p99_ms_logging",
    "logging_lag_ratio",
    "log_records_dropped",
    "backup_loop_lag_p99_ms",
    "backup_s",
    "backtest_bars_per_s",
    "backtest_rss_mb",
    "backtest_vs_numpy",
    "python",
    "cpu_count",
    "quick",
    "notes",
    "targets",
}

#: Runs the bench with ``Sizes.tiny()`` in the working directory given as argv[1].
_RUNNER = """
import os, sys
os.chdir(sys.argv[1])
from autoquant.bench.__main__ import main
from autoquant.bench.common import Sizes
raise SystemExit(main(["--quick"], sizes=Sizes.tiny()))
"""


def test_quick_bench_prints_every_key_as_its_last_line(tmp_path: Path) -> None:
    """A tiny quick run ends with one JSON object holding every result key, targets and notes,
    and writes the same object to .bench/latest.json."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    report = json.loads(last)
    assert report.keys() >= REQUIRED
    assert report["quick"] is True
    for key in (
        "ledger_append_per_s",
        "risk_check_p99_us",
        "tick_to_submit_p99_ms",
        "startup_ready_s",
        "log_calls_per_s",
        "loop_lag_p99_ms_logging",
        "backup_s",
    ):
        assert isinstance(report[key], (int, float)) and report[key] > 0, key
    assert set(report["targets"]) == {
        "ledger_vs_raw",
        "concurrent_vs_raw",
        "risk_check_p99_us",
        "tick_to_submit_p99_ms",
        "loop_lag_p99_ms_logging",
        "startup_ready_s",
        "rss_mb",
        "backup_loop_lag_p99_ms",
        "api_clients_tick_p99_ratio",
        "api_clients_loop_lag_ratio",
        "backtest_bars_per_s",
        "backtest_rss_mb",
        "backtest_stream_rss_mb",
    }
    assert report["backtest_same_trades_as_numpy"] is True
    assert all(isinstance(t["met"], bool) for t in report["targets"].values())
    assert json.loads((tmp_path / ".bench" / "latest.json").read_text()) == report
