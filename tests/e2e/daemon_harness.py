"""Run the real daemon as a subprocess on a temp directory, and read its ledger from outside."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG = """
[ledger]
path = "{root}/ledger.db"
[broker]
kind = "{kind}"
{broker_extra}
[paper]
state_path = "{root}/paper.db"
latency_s = 0.02
[marketdata]
symbols = ["AAPL", "MSFT"]
bar_seconds = {bar_seconds}
[[strategies]]
id = "sma-aapl"
kind = "sma_cross"
symbol = "AAPL"
fast = 2
slow = 4
qty = "3"
[[strategies]]
id = "sma-msft"
kind = "sma_cross"
symbol = "MSFT"
fast = 2
slow = 5
qty = "2"
[reconcile]
interval_s = 2.0
resubmit_grace_s = 0.5
[logging]
path = "{root}/autoquant.log"
level = "info"
"""


def write_config(
    root: Path, *, kind: str = "paper", broker_extra: str = "", bar_seconds: float = 0.1
) -> Path:
    path = root / "autoquant.toml"
    path.write_text(CONFIG.format(root=root, kind=kind, broker_extra=broker_extra, bar_seconds=bar_seconds))
    return path


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(poll_s)


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    except sqlite3.OperationalError:
        return []  # not migrated yet


@dataclass
class DaemonProcess:
    config: Path
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.db"

    def start(self) -> DaemonProcess:
        env = {**os.environ, **self.env}
        self.log = (self.root / "daemon.out").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autoquant", "--config", str(self.config), "run"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        return self

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "autoquant", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            timeout=60,
        )

    def ready(self) -> bool:
        return bool(query(self.ledger, "SELECT 1 FROM reconciliations WHERE trigger = 'startup'"))

    def terminate(self, timeout_s: float = 15.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        finally:
            self.log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        if hasattr(self, "log"):
            self.log.close()

    def output(self) -> str:
        return (self.root / "daemon.out").read_text(errors="replace")
