"""Scheduled backups: verified copies recorded in the ledger, pruned to ``keep``, failures an incident."""

from __future__ import annotations

from pathlib import Path

from autoquant.clocks import FakeClock
from autoquant.domain.controls import Control, ControlKind
from autoquant.ledger import Ledger, verify
from autoquant.ledger.settings import BackupSettings
from autoquant.workers.backups import BackupWorker, scheduled_backups
from autoquant.workers.incidents import IncidentReporter
from tests.ledger_sql import ledger_query


async def test_scheduled_backups_are_recorded_and_pruned(tmp_path: Path, clock: FakeClock) -> None:
    """Three periods with keep = 2: three backups recorded, the two newest kept, each a whole ledger;
    a file in the folder that is not a scheduled backup is left alone."""
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    async with await Ledger.open(tmp_path / "ledger.db") as ledger:
        worker = BackupWorker(
            ledger, clock, BackupSettings(dir=folder, keep=2), IncidentReporter(ledger, clock)
        )
        taken = []
        for i in range(3):
            await ledger.append_control(
                Control(
                    kind=ControlKind.PAUSE, scope="s", reason=f"r{i}", actor="t", local_ts_ns=clock.now_ns()
                )
            )
            info = await worker.once()
            assert info is not None
            taken.append(info.path)
            clock.advance(60)
        rows = await ledger_query(ledger, "SELECT path, trigger FROM backups ORDER BY seq")
    assert rows == [(str(path), "scheduled") for path in taken]
    assert scheduled_backups(folder, tmp_path / "ledger.db") == taken[1:]
    assert (folder / "notes.txt").read_text() == "mine"
    assert all(verify.problems(path) == [] for path in taken[1:])


async def test_a_failed_backup_is_an_incident_and_trading_goes_on(tmp_path: Path, clock: FakeClock) -> None:
    """A backup folder that cannot be made: an open backup_failed incident saying what to do, no halt."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    async with await Ledger.open(tmp_path / "ledger.db") as ledger:
        worker = BackupWorker(
            ledger, clock, BackupSettings(dir=blocker / "backups"), IncidentReporter(ledger, clock)
        )
        assert await worker.once() is None
        incidents = await ledger.incidents(open_only=True)
        state = await ledger.control_state()
    assert [i.kind for i in incidents] == ["backup_failed"]
    assert "autoquant backup DEST" in incidents[0].action
    assert state.trading_state.value == "active"
