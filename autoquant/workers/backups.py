"""The daemon's scheduled backups: every ``[backup] every_s``, a verified online copy into ``[backup] dir``.

The copy, its verification and hashing run on a background thread (``in_background``), never on the
event loop; under WAL the ledger's writer does not wait for it either. Each backup is recorded in the
ledger; the oldest scheduled backups beyond ``keep`` are deleted (only files this worker named, never
anything else in the folder). A failure is an incident the operator sees (no trading stops for it)
and the next period tries again.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from autoquant.domain.clock import Clock
from autoquant.domain.controls import ACCOUNT
from autoquant.errors import AutoquantError
from autoquant.ledger import Ledger
from autoquant.ledger.backup import BackupInfo, in_background, take_backup
from autoquant.ledger.settings import BackupSettings
from autoquant.workers.incidents import IncidentReporter

log = structlog.get_logger("autoquant.backups")


def backup_name(ledger: Path, now_ns: int) -> str:
    """``<ledger stem>-YYYYmmddTHHMMSS.nnnnnnnnnZ.db``: sorts by time, never collides within a run."""
    seconds, nanos = divmod(now_ns, 1_000_000_000)
    return f"{ledger.stem}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(seconds))}.{nanos:09d}Z.db"


def scheduled_backups(folder: Path, ledger: Path) -> list[Path]:
    """The scheduled backups of ``ledger`` in ``folder``, oldest first (other files are not ours)."""
    pattern = re.compile(rf"{re.escape(ledger.stem)}-\d{{8}}T\d{{6}}\.\d{{9}}Z\.db")
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name))


def prune(folder: Path, ledger: Path, keep: int) -> list[Path]:
    """Delete the oldest scheduled backups beyond ``keep``; returns what was deleted."""
    found = scheduled_backups(folder, ledger)
    doomed = found[: max(0, len(found) - keep)]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def _backup_into(ledger: Path, folder: Path, now_ns: int) -> BackupInfo:
    folder.mkdir(parents=True, exist_ok=True)
    return take_backup(ledger, folder / backup_name(ledger, now_ns))


class BackupWorker:
    def __init__(
        self,
        ledger: Ledger,
        clock: Clock,
        settings: BackupSettings,
        incidents: IncidentReporter,
        heartbeat: Callable[[], None] | None = None,
    ) -> None:
        if settings.dir is None:
            raise ValueError("scheduled backups need [backup] dir")
        self.ledger = ledger
        self.clock = clock
        self.folder = settings.dir
        self.every_s = settings.every_s
        self.keep = settings.keep
        self.incidents = incidents
        self.heartbeat = heartbeat or (lambda: None)

    async def run(self) -> None:
        while True:
            self.heartbeat()
            await self.clock.sleep(self.every_s)
            await self.once()

    async def once(self) -> BackupInfo | None:
        """One scheduled backup, recorded and pruned; None (and an incident) if it failed."""
        started = self.clock.monotonic()
        try:
            info = await in_background(_backup_into, self.ledger.path, self.folder, self.clock.now_ns())
            await self.ledger.record_backup(info, "scheduled", self.clock.now_ns())
            pruned = await asyncio.to_thread(prune, self.folder, self.ledger.path, self.keep)
        except (AutoquantError, OSError) as error:
            log.error("backup_failed", folder=str(self.folder), error=str(error))
            await self.incidents.report(
                "backup_failed",
                str(self.folder),
                f"the scheduled backup into {self.folder} failed: {error}",
                {"folder": str(self.folder), "error": str(error)},
                scope=ACCOUNT,
                action=(
                    f"check that {self.folder} exists, is writable and has space (trading goes on; the next "
                    "backup is tried on schedule); `autoquant backup DEST` takes one by hand, then "
                    "`autoquant resolve` this incident"
                ),
                reconcile=False,
            )
            return None
        log.info(
            "backup_taken",
            path=str(info.path),
            last_journal_seq=info.last_journal_seq,
            size_bytes=info.size_bytes,
            seconds=round(self.clock.monotonic() - started, 3),
            pruned=[p.name for p in pruned],
        )
        return info
