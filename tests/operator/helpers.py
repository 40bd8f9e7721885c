"""Helpers for the operator tests: `autoquant status --json` of a daemon, the events of its log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


BASE_CONFIG = """\
[ledger]
path = "{ledger}"
[paper]
state_path = "{root}/paper.db"
[logging]
path = "{root}/autoquant.log"
"""


def write_config(root: Path, ledger: str = "ledger.db", extra: str = "") -> Path:
    """A config in ``root``: its paper state and log there, the ledger at ``ledger`` as written."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "autoquant.toml"
    path.write_text(BASE_CONFIG.format(ledger=ledger, root=root) + extra)
    return path


def cli(
    config: Path | None, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``autoquant [--config CONFIG] ARGS…`` as a process, without the caller's APCA_/AUTOQUANT_ variables."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AUTOQUANT_"))}
    head = [sys.executable, "-m", "autoquant"] + ([] if config is None else ["--config", str(config)])
    return subprocess.run(
        [*head, *args],
        capture_output=True,
        text=True,
        env={**environment, **(env or {})},
        cwd=cwd or (config.parent if config else None),
        timeout=60,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, nothing on stdout, one ``autoquant…: …`` line on stderr naming every needle."""
    assert result.returncode == 2, result
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("autoquant"), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
