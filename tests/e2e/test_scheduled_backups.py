"""A running daemon takes its scheduled backups while it trades, records them and keeps ``keep``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autoquant.ledger import verify
from autoquant.workers.backups import scheduled_backups
from tests.e2e.daemon_harness import DaemonProcess, query, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path)
    yield process
    process.kill()


def test_daemon_backs_up_on_schedule_while_trading(daemon: DaemonProcess, tmp_path: Path) -> None:
    """[backup] every_s = 0.3, keep = 2: backups recorded while orders fill, two kept, each whole."""
    folder = tmp_path / "backups"
    with daemon.config.open("a") as config:
        config.write(f'[backup]\ndir = "{folder}"\nevery_s = 0.3\nkeep = 2\n')
    daemon.start()
    wait_for(lambda: query(daemon.ledger, "SELECT 1 FROM fills"), 60, "a first fill", poll_s=0.1)
    wait_for(
        lambda: len(query(daemon.ledger, "SELECT 1 FROM backups WHERE trigger = 'scheduled'")) >= 4,
        60,
        "four scheduled backups",
        poll_s=0.1,
    )
    assert daemon.terminate() == 0, daemon.tail()
    kept = scheduled_backups(folder, daemon.ledger)
    assert len(kept) == 2
    assert all(verify.problems(path) == [] for path in kept)
    assert not query(daemon.ledger, "SELECT 1 FROM incidents WHERE kind = 'backup_failed'")
