"""Helpers for the operator tests: `autoquant status --json` of a daemon, the events of its log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.daemon_harness import DaemonProcess


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
