"""Opening the ledger file safely, and the group-commit writer every write goes through.

``open_connection`` refuses a file that is not SQLite before SQLite touches it (so a wrong path is
never turned into a WAL database), applies migrations, and sets WAL, ``synchronous=FULL`` and foreign
keys. ``GroupCommit`` runs writes as savepoints inside one ``BEGIN IMMEDIATE`` transaction, so many
concurrent appenders share one fsync, while one appender's failure rolls back only its own work.
Results are released only after COMMIT returns: nobody is told "recorded" before it is durable.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from autoquant.errors import LedgerCorrupt, LedgerError
from autoquant.ledger import migrations

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], Any]

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 10_000


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


async def open_connection(path: Path) -> aiosqlite.Connection:
    await asyncio.to_thread(migrate_file, path)
    try:
        conn = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as error:
        raise translate(error, path) from error
    try:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    except sqlite3.Error as error:
        await conn.close()
        raise translate(error, path) from error
    return conn


async def on_thread(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on the connection's own thread, in one hop."""
    result: T = await conn._execute(fn, *args)  # type: ignore[no-untyped-call]
    return result


async def open_readonly_connection(path: Path) -> aiosqlite.Connection:
    try:
        return await aiosqlite.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
    except sqlite3.Error as error:
        raise translate(error, path) from error


class GroupCommit:
    """Serialises access to one connection and batches concurrent writes into one transaction.

    Writes and reads are plain synchronous functions over the ``sqlite3.Connection``; each batch (or
    read) runs whole on the connection's own thread in one hop, so a transaction costs one round trip
    to that thread, not one per statement. aiosqlite has no public call for "run this function on
    your thread"; ``Connection._execute`` is that call (it backs every public method), so the
    dependency is pinned to the versions that have it.
    """

    def __init__(self, conn: aiosqlite.Connection, path: Path, max_batch: int = 256) -> None:
        self._conn = conn
        self._path = path
        self._lock = asyncio.Lock()
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._max_batch = max_batch
        self._writer: asyncio.Task[None] | None = None

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Queue ``fn`` for the next transaction and wait until it is committed (or failed).

        One writer task drains the queue batch by batch while there is work, so concurrent callers
        share transactions and none of them waits on a lock. The writer belongs to no caller: a
        cancelled caller's write still commits, with everyone else's.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._drain_pending())
        return await future

    async def _drain_pending(self) -> None:
        async with self._lock:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._run(batch)

    async def _settle(self) -> None:
        writer = self._writer
        if writer is not None and not writer.done():
            await asyncio.shield(writer)

    async def drain(self) -> None:
        """Wait until every queued write is committed (used on close)."""
        await self._settle()

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        async with self._lock:
            try:
                result = await on_thread(self._conn, fn, self._conn._conn)
            except sqlite3.Error as error:
                raise translate(error, self._path) from error
            return result

    async def _run(self, batch: list[tuple[Write, asyncio.Future[Any]]]) -> None:
        try:
            outcomes = await on_thread(self._conn, _run_batch, self._conn._conn, [fn for fn, _ in batch])
        except BaseException as error:
            failed: BaseException = (
                translate(error, self._path) if isinstance(error, sqlite3.Error) else error
            )
            for _, future in batch:
                if not future.done():
                    future.set_exception(failed)
            if not isinstance(error, Exception):
                raise
            return
        for (ok, value), (_, future) in zip(outcomes, batch, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(
                    translate(value, self._path) if isinstance(value, sqlite3.Error) else value
                )


def _run_batch(conn: sqlite3.Connection, writes: list[Write]) -> list[tuple[bool, Any]]:
    """On the connection's thread: every write in its own savepoint, all in one transaction."""
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        if len(writes) == 1:
            # Alone in its transaction, a write needs no savepoint: its failure rolls back only itself.
            try:
                outcomes.append((True, writes[0](conn)))
            except Exception as error:
                conn.execute("ROLLBACK")
                return [(False, error)]
            conn.execute("COMMIT")
            return outcomes
        for fn in writes:
            conn.execute("SAVEPOINT write")
            try:
                outcomes.append((True, fn(conn)))
            except Exception as error:
                conn.execute("ROLLBACK TO write")
                outcomes.append((False, error))
            conn.execute("RELEASE write")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes
