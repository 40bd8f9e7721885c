"""Issue 10 item 7: one daemon per ledger and one exchange per paper state, however the file is reached."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.daemon_harness import DaemonProcess, wait_for
from tests.operator.helpers import status_json

pytestmark = pytest.mark.slow


def second_daemon(root: Path, ledger: Path, paper: Path, first: DaemonProcess) -> DaemonProcess:
    """A config like ``first``'s, reaching the ledger as ``ledger`` and the exchange as ``paper``."""
    other = DaemonProcess(root)
    text = first.config.read_text().replace(str(first.root), str(root))
    text = text.replace(f'path = "{root}/ledger.db"', f'path = "{ledger}"')
    text = text.replace(f'state_path = "{root}/paper.db"', f'state_path = "{paper}"')
    other.config.write_text(text)
    return other


def assert_refused(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_second_daemon_through_a_symlink_or_hard_link_is_refused(tmp_path: Path) -> None:
    """Symlinked and hard-linked ledgers, a paper-server on the daemon's state: refused, nothing written."""
    first = DaemonProcess(tmp_path / "first")
    try:
        started = first.start()
        wait_for(lambda: first.ready_or_exited(started), 60, "the first daemon's start-up")
        assert first.alive(), first.tail()
        links = tmp_path / "links"
        links.mkdir()
        (links / "sym.db").symlink_to(first.ledger)
        os.link(first.ledger, links / "hard.db")
        before = status_json(first)["trading_state"]

        symlinked = second_daemon(tmp_path / "sym", links / "sym.db", tmp_path / "sym" / "paper.db", first)
        assert first.process is not None
        assert_refused(symlinked.cli("run"), "held by a running daemon", f"pid {first.process.pid}")
        hard = second_daemon(tmp_path / "hard", links / "hard.db", tmp_path / "hard" / "paper.db", first)
        assert_refused(hard.cli("run"), "held by a running daemon", "hard link")
        shared_paper = second_daemon(
            tmp_path / "paper", tmp_path / "paper" / "own.db", first.root / "paper.db", first
        )
        assert_refused(shared_paper.cli("run"), "paper exchange state", "in use")
        assert (
            not (tmp_path / "paper" / "own.db").exists()
            or (tmp_path / "paper" / "own.db").stat().st_size == 0
        )

        server = subprocess.run(
            [sys.executable, "-m", "autoquant", "--config", str(first.config), "paper-server", "--port", "0"],
            capture_output=True,
            text=True,
            env=first.env(),
            timeout=60,
            check=False,
        )
        assert_refused(server, "paper exchange state", "in use")
        status = symlinked.cli("status")
        (tmp_path / "status-symlink.txt").write_text(status.stdout)
        assert status.stdout.startswith("daemon:          running (pid "), status.stdout
        assert status_json(first)["trading_state"] == before
        assert first.alive()
        assert first.terminate() == 0, first.tail()
    finally:
        first.kill()
