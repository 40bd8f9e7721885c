"""Run the real daemon as a subprocess on a temp directory, and read its ledger from outside."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autoquant.chaos.processes import daemon_config, query, wait_for

__all__ = ["DaemonProcess", "query", "wait_for", "write_config"]


def write_config(root: Path, *, url: str | None = None, bar_seconds: float = 0.1) -> Path:
    """The daemon's config in ``root``: the embedded exchange, or paper-server at ``url``."""
    path = root / "autoquant.toml"
    path.write_text(daemon_config(root, url=url, bar_seconds=bar_seconds))
    return path


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
