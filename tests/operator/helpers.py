"""Helpers for the operator tests: `autoquant status --json` of a daemon, the events of its log."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.daemon_harness import DaemonProcess, wait_for


def status_json(daemon: DaemonProcess) -> dict[str, Any]:
    result = daemon.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def log_events(path: Path) -> set[str]:
    """Every ``event`` name in a JSON log file."""
    events = set()
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            events.add(str(json.loads(line).get("event")))
    return events


def status_when(
    daemon: DaemonProcess, predicate: Callable[[dict[str, Any]], object], timeout_s: float, what: str
) -> dict[str, Any]:
    """Poll `status --json` until ``predicate`` holds for it; that status (TimeoutError naming ``what``)."""

    def check() -> dict[str, Any] | None:
        status = status_json(daemon)
        return status if predicate(status) else None

    return wait_for(check, timeout_s, what)
