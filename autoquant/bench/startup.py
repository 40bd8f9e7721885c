"""Start-up on a long history: seconds from process start to ready, and the process's peak RSS.

The ledger (``history``) holds a million fills and a hundred open orders; start-up must cost what
the open orders and positions cost, not what the history costs. Each run is a fresh interpreter
(imports included), timed by the parent from spawn to the child's ready line. The ledger file is
warm in the page cache, as on a service restart. Two paths are measured: the ledger's start-up reads
alone, and the daemon's whole start-up up to where it sends READY=1 (on a copy of the ledger and of
the paper exchange holding the open orders, since the daemon writes to both).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from autoquant.bench.common import Sizes, progress, scratch_dir
from autoquant.bench.history import cached_history, history_summary
from autoquant.bench.startup_child import READY

CHILD_TIMEOUT_S = 120.0


def measure_child(mode: str, where: Path, log_path: Path) -> dict[str, Any]:
    """Spawn the child, time spawn → ready line, return its report with ``ready_s`` added."""
    with log_path.open("w", encoding="utf-8") as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "autoquant.bench.startup_child", mode, str(where)],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            assert process.stdout is not None
            ready_s = None
            report: dict[str, Any] | None = None
            for line in process.stdout:
                if line.strip() == READY and ready_s is None:
                    ready_s = time.perf_counter() - started
                elif line.startswith("{"):
                    report = json.loads(line)
            code = process.wait(timeout=CHILD_TIMEOUT_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
    if code != 0 or ready_s is None or report is None:
        tail = log_path.read_text(encoding="utf-8")[-2000:]
        raise RuntimeError(f"startup child ({mode}) failed with exit code {code}: {tail}")
    return {**report, "ready_s": ready_s}


def run(sizes: Sizes) -> dict[str, object]:
    history = cached_history(sizes.startup_fills, sizes.startup_open_orders)
    counts = history_summary(history)
    ledger_runs, daemon_runs = [], []
    notes: list[str] = []
    with scratch_dir("startup") as scratch:
        for _ in range(sizes.startup_runs):
            # Read-only start-up reads: the cached file itself is used (nothing is written to it).
            ledger_runs.append(measure_child("ledger", history / "ledger.db", scratch / "ledger-child.log"))
        for n in range(sizes.startup_runs):
            copy = scratch / f"daemon-{n}"
            copy.mkdir()
            shutil.copyfile(history / "ledger.db", copy / "ledger.db")
            shutil.copyfile(history / "paper.db", copy / "paper.db")
            try:
                daemon_runs.append(measure_child("daemon", copy, scratch / "daemon-child.log"))
            except RuntimeError as error:
                notes.append(f"daemon start-up not measured: {error}")
                break
            finally:
                shutil.rmtree(copy, ignore_errors=True)
    ledger_ready = statistics.median(r["ready_s"] for r in ledger_runs)
    ledger_rss = max(float(r["rss_mb"]) for r in ledger_runs)
    progress(
        f"start-up (ledger reads) on {counts['fills']} fills, {ledger_runs[0]['open_orders']} open orders: "
        f"{ledger_ready:.2f}s, peak RSS {ledger_rss:.0f} MB"
    )
    result: dict[str, object] = {
        "startup_ledger_ready_s": round(ledger_ready, 3),
        "startup_ledger_rss_mb": round(ledger_rss, 1),
        "startup_ledger_read_mb": max(r["read_mb"] or 0.0 for r in ledger_runs),
        "startup_history_rows": counts,
    }
    if daemon_runs:
        daemon_ready = statistics.median(r["ready_s"] for r in daemon_runs)
        daemon_rss = max(float(r["rss_mb"]) for r in daemon_runs)
        progress(f"start-up (daemon to READY): {daemon_ready:.2f}s, peak RSS {daemon_rss:.0f} MB")
        result.update(
            startup_daemon_read_mb=max(r["read_mb"] or 0.0 for r in daemon_runs),
            startup_daemon_ready_s=round(daemon_ready, 3),
            startup_daemon_rss_mb=round(daemon_rss, 1),
            startup_ready_s=round(daemon_ready, 3),
            rss_mb=round(daemon_rss, 1),
        )
        notes.append("startup_ready_s and rss_mb: the daemon's start-up to READY (runtime/daemon.py)")
        notes.append(
            "startup_*_read_mb: bytes the start-up read (rchar) from its start to ready; a scan of the"
            " history shows here as hundreds of MB, whatever the page cache holds"
        )
    else:
        result.update(
            startup_daemon_ready_s=None,
            startup_ready_s=round(ledger_ready, 3),
            rss_mb=round(ledger_rss, 1),
        )
        notes.append("startup_ready_s and rss_mb: ledger start-up reads only (the daemon did not start)")
    result["notes"] = notes
    return result
