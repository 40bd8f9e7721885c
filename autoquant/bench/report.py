"""The targets the issue sets, and the final JSON object (targets judged from the same run's numbers)."""

from __future__ import annotations

import operator
import os
import platform
from collections.abc import Callable
from typing import Any

Compare = Callable[[float, float], bool]

#: key -> (comparison, target, how the target is written). Ratios are measured in the same run.
TARGETS: dict[str, tuple[Compare, float, str]] = {
    "ledger_vs_raw": (operator.ge, 0.8, ">= 0.8"),
    "concurrent_vs_raw": (operator.ge, 8.0, ">= 8"),
    "risk_check_p99_us": (operator.le, 20.0, "<= 20"),
    "tick_to_submit_p99_ms": (operator.le, 2.0, "<= 2"),
    "loop_lag_p99_ms_logging": (operator.le, 1.0, "<= 1"),
    "api_clients_tick_p99_ratio": (operator.le, 1.10, "<= 1.10"),
    "api_clients_loop_lag_ratio": (operator.le, 1.10, "<= 1.10"),
    "startup_ready_s": (operator.le, 3.0, "<= 3"),
    "rss_mb": (operator.le, 200.0, "<= 200"),
    # A backup must not stall trading: the loop stays within a tick-to-submit budget while it runs.
    "backup_loop_lag_p99_ms": (operator.le, 2.0, "<= 2"),
    "backtest_bars_per_s": (operator.ge, 25_000.0, ">= 25000"),
    "backtest_rss_mb": (operator.le, 200.0, "<= 200"),
    "backtest_stream_rss_mb": (operator.le, 200.0, "<= 200"),
}


def targets(results: dict[str, Any]) -> dict[str, dict[str, object]]:
    judged: dict[str, dict[str, object]] = {}
    for key, (compare, target, text) in TARGETS.items():
        value = results.get(key)
        judged[key] = {
            "target": text,
            "met": value is not None and compare(float(value), target),
        }
    return judged


def final_report(results: dict[str, Any], notes: list[str], quick: bool) -> dict[str, Any]:
    return {
        **results,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "quick": quick,
        "notes": notes,
        "targets": targets(results),
    }
