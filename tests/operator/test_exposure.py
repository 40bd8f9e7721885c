"""Issue 10 item 11: paper-server's exposure warning and defaults, the reset documented, files not
world-readable (real processes)."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.daemon_harness import DaemonProcess, wait_for
from tests.operator.helpers import cli, write_config

ROOT = Path(__file__).parents[2]
EXPOSED = ("--host", "0.0.0.0", "--port", "0")


def test_paper_server_help_shows_its_defaults() -> None:
    """`paper-server -h` (both entry points) shows the default host and port."""
    for command in (
        ["-m", "autoquant", "paper-server", "-h"],
        ["-m", "autoquant.runtime.paper_server", "-h"],
    ):
        text = " ".join(
            subprocess.run(
                [sys.executable, *command], capture_output=True, text=True, check=True
            ).stdout.split()
        )
        assert "(default: 127.0.0.1)" in text, text
        assert "(default: 8765)" in text or "(default: 0)" in text, text


def test_paper_server_beyond_loopback_warns(tmp_path: Path) -> None:
    """`paper-server --host 0.0.0.0` says the API is plain HTTP with test keys before it listens."""
    config = write_config(tmp_path)
    env = {"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "s"}
    out = tmp_path / "server.out"
    with out.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "autoquant", "--config", str(config), "paper-server", *EXPOSED],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**cli_env(), **env},
        )
    try:
        text = wait_for(lambda: "listening on" in (t := out.read_text()) and t, 30, "paper-server to listen")
        assert "WARNING: listening on 0.0.0.0" in str(text) and "plain HTTP" in str(text), text
        assert "test keys" in str(text)
    finally:
        process.terminate()
        process.wait(timeout=30)


def cli_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AUTOQUANT_"))}


def test_reset_and_reconcile_needs_the_daemon_stopped_are_documented() -> None:
    """README's Recover section says reconcile needs the daemon stopped and how to start over (both files)."""
    recover = (ROOT / "README.md").read_text().split("## Recover", 1)[1].split("\n## ", 1)[0]
    assert "`autoquant reconcile` needs the daemon stopped" in recover
    assert "rm -f var/autoquant.db* var/paper.db*" in recover
    assert "daemon stopped" in " ".join(cli(None, "reconcile", "--help").stdout.split())


@pytest.mark.slow
def test_files_the_daemon_creates_are_not_world_readable(tmp_path: Path) -> None:
    """Run by hand (umask 022): ledger, WAL, log, paper state and status file have no bits for others."""
    daemon = DaemonProcess(tmp_path / "daemon")
    try:
        started = daemon.start()
        wait_for(lambda: daemon.ready_or_exited(started), 60, "the start-up reconciliation")
        status_file = daemon.root / "ledger.db.status.json"
        wait_for(status_file.exists, 20, "the status file")
        names = ["ledger.db", "ledger.db-wal", "autoquant.log", "paper.db", "ledger.db.status.json"]
        for name in names:
            mode = stat.S_IMODE((daemon.root / name).stat().st_mode)
            assert mode & 0o007 == 0, f"{name} is {oct(mode)}"
        assert daemon.terminate() == 0, daemon.tail()
    finally:
        daemon.kill()
