"""Online backup and restore of the ledger file, each verified before it counts.

``take_backup`` copies a live ledger with SQLite's backup API in one step: one read transaction, so the
copy is one consistent point of the ledger, and under WAL the daemon's writer never waits for it (the
step runs in C with the GIL released; call it through ``in_background``, never on the event loop). The copy is
written beside ``dest`` under a temporary name, switched to a self-contained single file
(``journal_mode=DELETE``), verified like ``autoquant doctor`` verifies a ledger (``integrity_check``,
migrations and their checksums, the append-only triggers), hashed, fsynced, and only then linked to
``dest``, which it never overwrites. A failed backup leaves nothing at ``dest``.

``restore_ledger`` verifies SRC the same way (an older one is migrated forward; a newer one is
refused), copies it beside the ledger, writes into the copy that it was restored, from which point,
an incident saying what to do, and an account HALT linked to it (trading waits for an operator's
``resume``), verifies the copy again, then moves the current ledger and its WAL and SHM aside under a
timestamped name (never deleting them) and puts the copy in its place. Whatever fails before that
last step leaves the ledger untouched. The caller holds the ledger lock (no daemon may run).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from autoquant.clocks import hold_time
from autoquant.domain.controls import ACCOUNT, Control, ControlKind
from autoquant.errors import LedgerError
from autoquant.ledger import migrations, oversight, verify
from autoquant.ledger.connection import BUSY_TIMEOUT_MS, readonly_uri, translate

T = TypeVar("T")

#: The nice value of the thread a backup runs on (Linux: per thread): the loop wins every contest.
BACKGROUND_NICE = 10

#: The incident a restore opens in the restored ledger; its action is what the operator must do.
RESTORED_INCIDENT = "ledger_restored"
#: The files SQLite keeps beside a WAL ledger; a restore moves them aside with it.
SIDE_FILES = ("-wal", "-shm")


class BackupRefused(LedgerError):
    """A backup or restore that cannot be done as asked; nothing was changed."""


@dataclass(frozen=True)
class BackupInfo:
    """A verified copy: where, up to which global sequence (and the local time of that event), how big."""

    path: Path
    last_journal_seq: int
    last_ns: int
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class RestoreInfo:
    source: Path
    backup: BackupInfo
    moved_aside: list[Path]
    incident_id: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(source: Path, target: Path) -> None:
    """SQLite's backup API, all pages in one step (one consistent snapshot of ``source``)."""
    src = sqlite3.connect(readonly_uri(source), uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            dst.close()
    finally:
        src.close()


def _point(path: Path) -> tuple[int, int]:
    """The last global sequence of the ledger at ``path`` and the local time of that event."""
    conn = sqlite3.connect(readonly_uri(path), uri=True)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'journal'").fetchone() is None:
            return 0, 0  # written before the journal (0003): it has no global sequence yet
        row = conn.execute(
            "SELECT coalesce(max(seq), 0), coalesce(max(local_ts_ns), 0) FROM journal"
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]), int(row[1])


def _info(path: Path) -> BackupInfo:
    seq, last_ns = _point(path)
    return BackupInfo(path, seq, last_ns, path.stat().st_size, file_sha256(path))


def _partial(dest: Path, what: str) -> Path:
    return dest.with_name(f".{dest.name}.{what}-{os.getpid()}-{time.time_ns()}")


def _refuse_problems(path: Path, label: str, found: list[str]) -> None:
    if found:
        more = f" (and {len(found) - 1} more; `autoquant doctor` lists them)" if len(found) > 1 else ""
        raise BackupRefused(f"{label} {path} is not a usable ledger: {found[0]}{more}; nothing was changed")


def take_backup(source: Path, dest: Path) -> BackupInfo:
    """Copy the ledger at ``source`` to the new file ``dest``, verified; blocking (run it in a thread)."""
    if dest.exists() or dest.is_symlink():
        raise BackupRefused(
            f"backup target {dest} already exists: name a new file (a backup never overwrites)"
        )
    if not dest.parent.is_dir():
        raise BackupRefused(f"backup target folder {dest.parent} does not exist: create it first")
    if not source.exists():
        raise BackupRefused(f"no ledger at {source}: there is nothing to back up")
    partial = _partial(dest, "partial")
    try:
        try:
            _copy(source, partial)
        except sqlite3.Error as error:
            raise translate(error, source) from error
        _refuse_problems(partial, "the copy of", verify.problems(partial, immutable=True, allow_pending=True))
        _fsync(partial)
        info = _info(partial)
        try:
            os.link(partial, dest)  # fails if dest appeared meanwhile: never overwrite
        except FileExistsError:
            raise BackupRefused(f"backup target {dest} already exists: name a new file") from None
        _fsync(dest.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return BackupInfo(dest, info.last_journal_seq, info.last_ns, info.size_bytes, info.sha256)


async def in_background(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on a fresh thread at a lower CPU priority and await its result.

    A fresh thread rather than the default executor's: the nice value sticks to the thread (it cannot
    be raised back without privileges), so it must not be a pooled one that other work reuses.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    release = hold_time(loop)

    def settle(ok: bool, value: Any) -> None:
        release()
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def work() -> None:
        with contextlib.suppress(OSError, AttributeError):  # not Linux: the default priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
        value: Any
        try:
            value, ok = fn(*args), True
        except BaseException as error:
            value, ok = error, False
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, ok, value)

    threading.Thread(target=work, name="ledger-backup", daemon=True).start()
    return await future


def insert_backup(conn: sqlite3.Connection, info: BackupInfo, trigger: str, local_ts_ns: int) -> int:
    cursor = conn.execute(
        "INSERT INTO backups (path, last_journal_seq, size_bytes, sha256, trigger, local_ts_ns)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (str(info.path), info.last_journal_seq, info.size_bytes, info.sha256, trigger, local_ts_ns),
    )
    return int(cursor.lastrowid or 0)


def record_backup_file(ledger: Path, info: BackupInfo, trigger: str, local_ts_ns: int) -> bool:
    """Record a backup in the ledger from a process that does not hold the ledger open (the CLI).

    False (nothing written) for a ledger that predates the backups table: a backup taken before an
    upgrade must not migrate the ledger it protects."""
    try:
        conn = sqlite3.connect(ledger, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            known = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'backups'")
            if known.fetchone() is None:
                return False
            conn.execute("BEGIN IMMEDIATE")
            insert_backup(conn, info, trigger, local_ts_ns)
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise translate(error, ledger) from error
    return True


# -- restore -------------------------------------------------------------------------------------------


def check_source(source: Path, ledger: Path) -> None:
    """Refuse a SRC that is missing, is the ledger itself, or is not a whole ledger this code can read."""
    if not source.is_file():
        raise BackupRefused(f"restore source {source} does not exist or is not a file; nothing was changed")
    if ledger.exists() and source.resolve() == ledger.resolve():
        raise BackupRefused(f"restore source {source} is the ledger itself: name a backup file")
    _refuse_problems(source, "restore source", verify.problems(source, allow_pending=True))


def _stamp(now_ns: int) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_ns / 1e9))


def _migrate(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrations.migrate(conn)
    finally:
        conn.close()


def _mark_restored(
    path: Path,
    source: Path,
    source_sha: str,
    point: tuple[int, int],
    aside: Path | None,
    actor: str,
    now_ns: int,
) -> str:
    """Write into the (migrated) copy that it was restored; returns the incident id."""
    seq, last_ns = point
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO restores (source_path, source_sha256, backup_journal_seq, backup_last_ns,"
            " moved_aside, actor, local_ts_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (str(source), source_sha, seq, last_ns, None if aside is None else str(aside), actor, now_ns),
        )
        message = (
            f"the ledger was restored from {source} (up to global sequence {seq}); orders placed after that "
            "point are adopted from the broker at the next start, and trading waits for an operator"
        )
        action = (
            "start the daemon and let its start-up reconciliation converge; check `autoquant incidents` "
            "and `autoquant orders`, then "
            '`autoquant resolve ID --note "…"` and `autoquant resume --reason "…"`'
        )
        draft = oversight.IncidentDraft(
            RESTORED_INCIDENT,
            f"restore-{now_ns}",
            ACCOUNT,
            message,
            action,
            {"source": str(source), "sha256": source_sha, "backup_journal_seq": seq},
            now_ns,
        )
        incident_id, _ = oversight.open_incident(conn, draft)
        halt = Control(
            kind=ControlKind.HALT,
            scope=ACCOUNT,
            reason=f"{message} (incident {incident_id})",
            actor=actor,
            local_ts_ns=now_ns,
        )
        oversight.insert_control(conn, halt, incident_id)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return incident_id


def restore_ledger(source: Path, ledger: Path, *, actor: str, now_ns: int) -> RestoreInfo:
    """Put a verified copy of ``source`` in place of ``ledger``; blocking. The caller holds the lock."""
    check_source(source, ledger)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    stamp = _stamp(now_ns)
    # A WAL left beside a lost ledger file would be replayed onto the restored one: it moves aside too.
    present = any(Path(f"{ledger}{suffix}").exists() for suffix in ("", *SIDE_FILES))
    aside = ledger.with_name(f"{ledger.name}.before-restore-{stamp}") if present else None
    if aside is not None and any(Path(f"{aside}{s}").exists() for s in ("", *SIDE_FILES)):
        raise BackupRefused(f"{aside} already exists: wait a second and run the restore again")
    copy = _partial(ledger, "restoring")
    try:
        try:
            _copy(source, copy)
            _migrate(copy)  # a backup from an older autoquant is brought forward first
            point = _point(copy)
            source_sha = file_sha256(source)
            incident_id = _mark_restored(copy, source, source_sha, point, aside, actor, now_ns)
        except sqlite3.Error as error:
            raise translate(error, source) from error
        _refuse_problems(copy, "the restored copy of", verify.problems(copy, immutable=True))
        _fsync(copy)
        moved: list[Path] = []
        for suffix in ("", *SIDE_FILES):
            current = Path(f"{ledger}{suffix}")
            if aside is not None and current.exists():
                target = Path(f"{aside}{suffix}")
                os.rename(current, target)
                moved.append(target)
        # Litestream's local position belongs to the replaced file: it starts afresh on the restored one.
        litestream = ledger.with_name(f".{ledger.name}-litestream")
        if litestream.exists():
            target = ledger.with_name(f".{ledger.name}-litestream.before-restore-{stamp}")
            os.rename(litestream, target)
            moved.append(target)
        os.rename(copy, ledger)
        _fsync(ledger.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            copy.unlink()
    info = BackupInfo(source, point[0], point[1], source.stat().st_size, source_sha)
    return RestoreInfo(source, info, moved, incident_id)
