"""Opening the ledger file safely, and noticing other connections' commits.

``migrate_file`` refuses a file that is not SQLite before SQLite touches it (so a wrong path is
never turned into a WAL database), applies migrations, and sets WAL, ``synchronous=FULL`` and foreign
keys. ``connect_writer`` and ``connect_reader`` open the two connections every statement runs on (the
threads that own them are in ``threads``); ``translate`` turns SQLite's errors into the ledger's.
``ExternalWrites`` (and, for a writer run on the loop, ``WriterWatch``) tells whether another process
committed since the last look: the CLI's pause or halt, obeyed at the next tick.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from autoquant.errors import LedgerCorrupt, LedgerError, LedgerFull
from autoquant.ledger import migrations
from autoquant.ledger.space import size_limit_reached, space_at

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 10_000


def readonly_uri(path: Path) -> str:
    """An SQLite URI opening ``path`` read-only; the path is percent-encoded, so a ``#`` or ``?`` in a
    file name is part of the name, not a fragment or a query."""
    return f"file:{quote(str(path.absolute()))}?mode=ro"


def check_file(path: Path) -> None:
    """Refuse a file that exists but is not an SQLite database, without modifying it."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise LedgerCorrupt(
            f"{path} is not an SQLite database: point [ledger] path at the ledger file "
            "(or a new path to create one)"
        )


def translate(error: sqlite3.Error, path: Path) -> LedgerError:
    text = str(error)
    if isinstance(error, sqlite3.DatabaseError) and (
        "malformed" in text or "not a database" in text or "disk image" in text
    ):
        return LedgerCorrupt(
            f"{path} is corrupt ({text}): stop the daemon, keep a copy of the file, and restore "
            "the ledger from backup; `autoquant doctor` shows what is wrong"
        )
    if "disk is full" in text or "disk I/O error" in text:
        space = space_at(path)
        limit = size_limit_reached(path)
        if "disk is full" in text or (space is not None and space.low) or limit is not None:
            where = f" ({space.describe()})" if space is not None else ""
            if limit is not None:
                where += f" (the file size limit of {limit} bytes is reached: ulimit -f, LimitFSIZE=)"
            return LedgerFull(
                f"ledger disk full: {path} cannot be written ({text}){where}: free space on that disk "
                "(a running daemon halts, and records the halt once it can write: then `autoquant resume`)"
            )
        if space is not None:
            return LedgerError(f"ledger {path}: {text} ({space.describe()}): check the disk and `dmesg`")
    if "locked" in text or "busy" in text:
        return LedgerError(f"{path} is busy ({text}): another process holds a write lock; retry")
    return LedgerError(f"ledger {path}: {text}")


def migrate_file(path: Path) -> list[migrations.Migration]:
    """Create (if needed) and migrate the ledger with a plain sqlite3 connection."""
    check_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            return migrations.migrate(conn)
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise translate(error, path) from error


def connect_writer(path: Path, *, durable: bool = True) -> sqlite3.Connection:
    """The writer's connection. ``durable=False`` (a backtest's scratch ledger, rebuilt by rerunning)
    skips the fsync per commit: same schema, same rows, same order, only no crash-safety."""
    conn = sqlite3.connect(
        path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    except BaseException:
        conn.close()
        raise
    return conn


def connect_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection: ``mode=ro`` and ``query_only``, so it cannot write even by mistake."""
    conn = sqlite3.connect(
        readonly_uri(path),
        uri=True,
        isolation_level=None,
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,
    )
    try:
        conn.execute("PRAGMA query_only=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    except BaseException:
        conn.close()
        raise
    return conn


class ExternalWrites:
    """Notices commits by other connections (the CLI in another process) without reading the file.

    ``PRAGMA data_version`` changes when another connection commits; it is answered from the WAL
    index in shared memory. The writer thread calls ``absorb`` right after each of its own COMMITs,
    so only other writers' commits count as a change for ``changed`` (called on the loop).

    A commit by another process that lands between our COMMIT and ``absorb`` would be absorbed with
    ours; the writer connection's own ``data_version`` (which moves only for *other* connections'
    commits) catches it: ``absorb`` reads it after re-reading our view, and any move marks a foreign
    commit that ``changed`` then reports. For the same reason ``changed`` does not judge a move it
    sees while our batch runs (``batch_starting`` to ``absorb``): it may be our own COMMIT, and
    ``absorb`` will tell (taking it for a foreign commit cost a needless read of the controls).
    """

    def __init__(self, path: Path, writer: sqlite3.Connection) -> None:
        """``writer`` is the writer's connection, before its thread starts: its baseline is read first,
        so a commit landing while this watcher opens is seen by one of the two versions."""
        self._writer_version = _data_version(writer)
        self._foreign = False
        self._sqlite = sqlite3.connect(
            readonly_uri(path), uri=True, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()
        self._closed = False
        self._committing = False
        self._version = self._read()

    def _read(self) -> int:
        return _data_version(self._sqlite)

    def changed(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            if self._committing:
                changed, self._foreign = self._foreign, False
                return changed
            version = self._read()
            changed = version != self._version or self._foreign
            self._version, self._foreign = version, False
        return changed

    def batch_starting(self) -> None:
        """On the writer thread, before a batch: what moves from here to ``absorb`` may be ours."""
        with self._lock:
            self._committing = True

    def absorb(self, writer: sqlite3.Connection) -> None:
        """On the writer thread, right after its COMMIT: our own commit is not a change."""
        with self._lock:
            self._committing = False
            if self._closed:
                return
            self._version = self._read()
            writer_version = _data_version(writer)
            if writer_version != self._writer_version:
                self._foreign = True  # another process committed since our previous batch
            self._writer_version = writer_version

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._sqlite.close()


class ForeignCommits(Protocol):
    """Whether another connection committed since the last look (``ExternalWrites``, ``WriterWatch``)."""

    def changed(self) -> bool: ...

    def close(self) -> None: ...


class WriterWatch:
    """``ExternalWrites`` for a writer whose batches run on the loop (``on_loop``): the loop owns the
    writer's connection between batches, so it asks that connection itself. Its ``data_version`` moves
    only for other connections' commits, so nothing needs absorbing after each of ours (no second
    connection, no two reads per batch)."""

    def __init__(self, writer: sqlite3.Connection) -> None:
        self._writer = writer
        self._version = _data_version(writer)
        self._closed = False

    def changed(self) -> bool:
        """On the loop, never inside a batch (a batch runs within one callback)."""
        if self._closed:
            return False
        version = _data_version(self._writer)
        changed, self._version = version != self._version, version
        return changed

    def close(self) -> None:
        self._closed = True  # the connection is the writer's, closed by it


def _data_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA data_version").fetchone()
    return int(row[0]) if row else 0
