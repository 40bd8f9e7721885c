"""The running daemon as ``autoquant status`` sees it: its status side file, read and judged.

The daemon is running while its status file is fresh (written within ``STATUS_FRESH_S``), not marked
stopped, and the pid that wrote it still exists; a daemon that is not running has no running worker,
whatever its last file said.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from autoquant.domain.values import iso_utc, to_ns
from autoquant.operator.text import duration
from autoquant.runtime.status_file import read_status

Row = dict[str, Any]

#: A status side file older than this means the daemon is not running (it rewrites it every second).
STATUS_FRESH_S = 5.0


def iso(ns: int | None) -> str | None:
    return None if ns is None else iso_utc(ns)


def process_exists(pid: int) -> bool:
    """Whether a process with this pid exists on this host (a stopped daemon's file outlives it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except (OSError, OverflowError):
        return False
    return True


def _not_running(note: str) -> Row:
    return {
        "running": False,
        "note": note,
        "pid": None,
        "started": None,
        "written": None,
        "healthy": None,
        "unhealthy": [],
        "broker": None,
        "reconciliation_failure": None,
        "ledger_disk_full": None,
        "market_data_ended": None,
        "trading_state": None,
        "marks": {},
        "log_records_dropped": None,
        "workers": [],
    }


def daemon_status(status_file: Path, now_ns: int) -> Row:
    """The daemon's liveness from its status side file: running while the file is fresh (written
    within ``STATUS_FRESH_S``), not marked stopped, and the pid that wrote it still exists."""
    try:
        body = read_status(status_file)
        written_ns = to_ns(datetime.fromisoformat(str(body["written"]).replace("Z", "+00:00")))
    except FileNotFoundError:
        return _not_running(f"not running (no status file at {status_file})")
    except (OSError, ValueError, KeyError, TypeError):
        body, written_ns = {}, int(status_file.stat().st_mtime_ns) if status_file.exists() else 0
    age_ns = now_ns - written_ns
    age_s = age_ns / 1e9
    pid = body.get("pid")
    exited = isinstance(pid, int) and not process_exists(pid)
    stopped = bool(body.get("stopped"))
    running = age_s <= STATUS_FRESH_S and not exited and not stopped
    if running:
        note = f"running (pid {pid})"
    elif stopped:
        note = f"not running (pid {pid} stopped at {iso(written_ns)})"
    elif exited:
        note = f"not running (pid {pid} has exited; status file last written {duration(age_ns)} ago)"
    else:
        note = f"not running (status file last written {duration(age_ns)} ago by pid {pid})"
    workers = body.get("workers")
    if not isinstance(workers, dict):
        workers = {}
    live = body if running else {}
    marks = live.get("marks")
    return {
        "running": running,
        "note": note,
        "pid": pid,
        "started": body.get("started"),
        "written": iso(written_ns),
        "healthy": body.get("healthy") if running else None,
        "unhealthy": live.get("unhealthy") or [],
        "broker": live.get("broker"),
        "reconciliation_failure": live.get("reconciliation_failure"),
        "ledger_disk_full": live.get("ledger_disk_full"),
        "market_data_ended": live.get("market_data_ended"),
        "trading_state": live.get("trading_state"),
        "marks": marks if isinstance(marks, dict) else {},
        "log_records_dropped": body.get("log_records_dropped"),
        "workers": [
            {
                "name": name,
                # A daemon that is not running has no running worker, whatever its last file said.
                "state": _worker_state(info, running),
                "running": bool(info.get("running")) and running,
                "finished": info.get("finished"),
                "waiting": info.get("waiting") if running else None,
                "restarts": info.get("restarts"),
                "last_heartbeat": info.get("last_heartbeat"),
            }
            for name, info in sorted(workers.items())
            if isinstance(info, dict)
        ],
    }


def _worker_state(info: Row, daemon_running: bool) -> str:
    if not daemon_running:
        return "stopped"
    if info.get("waiting"):
        return "waiting"
    if info.get("running"):
        return "running"
    return "finished" if info.get("finished") else "restarting"
