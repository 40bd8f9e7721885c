"""Opening the ledger file safely, and the two threads every statement runs on.

``migrate_file`` refuses a file that is not SQLite before SQLite touches it (so a wrong path is
never turned into a WAL database), applies migrations, and sets WAL, ``synchronous=FULL`` and foreign
keys. ``WriterThread`` owns the only writing connection: it takes whatever writes are queued and runs
them in one ``BEGIN IMMEDIATE`` transaction, each isolated as if in its own savepoint (one fsync for
the batch; one writer's failure rolls back only its own work, see ``run_write_batch``) and releases
the results only after COMMIT returns: nobody is told "recorded" before it is durable.
``ReaderThread`` owns a separate read-only connection; under WAL a read never waits for the writer's
fsync.

Both are a plain ``threading.Thread`` with its own ``sqlite3`` connection and a ``queue.SimpleQueue``;
results go back to the caller's loop with ``call_soon_threadsafe``. This replaced aiosqlite, which
has no public way to run a whole transaction on its thread in one hop (we had to call its private
``Connection._execute``) and which serialised reads behind writes on one connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from autoquant.clocks import hold_time
from autoquant.errors import LedgerCorrupt, LedgerError, LedgerFull
from autoquant.ledger import migrations
from autoquant.ledger.space import size_limit_reached, space_at

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], Any]
#: Run on the loop, in commit order, with a committed write's result (the in-memory projection).
OnCommit = Callable[[Any], None]

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


def _translated(error: BaseException, path: Path) -> BaseException:
    return translate(error, path) if isinstance(error, sqlite3.Error) else error


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


@dataclass
class _Job:
    fn: Write
    on_commit: OnCommit | None
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    #: Lets a virtual clock driving ``loop`` jump again once the job is answered (a no-op otherwise).
    release: Callable[[], None]
    #: Tells the thread that queued it that it is answered (``_SqliteThread.unanswered``).
    answered: Callable[[], None]


_STOP = None


class _SqliteThread:
    """One thread, one connection, a queue of jobs; subclasses say how a batch of jobs runs."""

    name = "ledger"

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        max_batch: int = 256,
        on_batch: Callable[[sqlite3.Connection], None] | None = None,
        before_batch: Callable[[], None] | None = None,
        *,
        on_loop: bool = False,
    ) -> None:
        self._sqlite = conn
        #: Run each turn's jobs on the loop itself, in the callback that follows the turn that queued
        #: them, instead of on a thread (a backtest's scratch ledger; see ``Ledger.open``).
        self._on_loop = on_loop
        self._on_batch = on_batch
        self._before_batch = before_batch
        self._path = path
        self._max_batch = max_batch
        #: Each item is the jobs one loop turn submitted (``_hand_over``), or ``_STOP``.
        self._queue: queue.SimpleQueue[list[_Job] | None] = queue.SimpleQueue()
        #: Jobs submitted during the current turn of each loop, not yet handed to the thread.
        self._pending: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        #: Batches run so far (for a writer, transactions committed or failed: one fsync each).
        self.batches = 0
        #: Jobs queued whose callers are not answered yet (for a writer: whose ``on_commit`` has not
        #: run): zero means the projection its writes keep has seen every write queued so far.
        self.unanswered = 0
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"{self.name} {path.name}", daemon=True)
        if not on_loop:
            self._thread.start()

    def submit(
        self, fn: Callable[[sqlite3.Connection], T], on_commit: OnCommit | None = None
    ) -> asyncio.Future[T]:
        """Queue ``fn``; its future resolves on the caller's loop once its batch is done.

        The job is handed to the thread at the end of the loop's turn, together with every other job
        submitted in that turn (``_hand_over``): one wake-up of the thread per turn, and the writes a
        turn makes (64 tasks woken by one commit, each appending again) reach the thread as one group,
        so they share one transaction and one fsync. Handing each job over at once let the thread,
        free on the other core, start a commit with the first few while the loop was still queuing
        the rest: a second fsync for the same turn's writes.
        """
        return self.submit_many([(fn, on_commit)])[0]

    def submit_many(self, writes: list[tuple[Write, OnCommit | None]]) -> list[asyncio.Future[Any]]:
        """Several jobs queued in order, handed over with the rest of this turn's (see ``submit``)."""
        if self._closed:
            raise LedgerError(f"ledger {self._path} is closed")
        loop = asyncio.get_running_loop()
        jobs = [
            _Job(fn, on_commit, loop.create_future(), loop, hold_time(loop), self._answered)
            for fn, on_commit in writes
        ]
        self.unanswered += len(jobs)
        pending = self._pending.get(loop)
        if pending is None:
            self._pending[loop] = jobs
            loop.call_soon(self._hand_over, loop)
        else:
            pending.extend(jobs)
        return [job.future for job in jobs]

    def _answered(self) -> None:
        self.unanswered -= 1

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``, after the turn that submitted them: its jobs to the thread, in one put."""
        jobs = self._pending.pop(loop, None)
        if not jobs:
            return
        if self._on_loop:
            # Run and answered here, in this callback: the jobs' holds are released before the loop
            # next looks at its clock, so a virtual clock never waits on them, nor jumps past them.
            self._run(jobs, threadsafe=False)
        else:
            self._queue.put(jobs)

    async def close(self) -> None:
        """Finish every queued job, then close the connection."""
        if self._closed:
            return
        self._closed = True
        for loop in list(self._pending):  # jobs submitted this turn go before the stop
            self._hand_over(loop)
        if self._on_loop:
            self._sqlite.close()
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    def _loop(self) -> None:
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is None:
                    break
                batch = list(first)
                while len(batch) < self._max_batch:
                    try:
                        jobs = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if jobs is None:
                        stopping = True
                        break
                    batch.extend(jobs)
                self._run(batch, threadsafe=True)
        finally:
            self._sqlite.close()

    def _run(self, batch: list[_Job], *, threadsafe: bool) -> None:
        """One batch: run it, then hand each caller its outcome on its loop."""
        self.batches += 1
        if self._before_batch is not None:
            self._before_batch()
        try:
            outcomes = self.run_batch(self._sqlite, [job.fn for job in batch])
        except BaseException as error:  # the whole batch failed (BEGIN or COMMIT)
            outcomes = [(False, error)] * len(batch)
        if self._on_batch is not None:
            with contextlib.suppress(sqlite3.Error):  # a hint only: never lose a batch to it
                self._on_batch(self._sqlite)  # on this thread, right after COMMIT
        _deliver(batch, outcomes, self._path, threadsafe)

    def run_batch(self, conn: sqlite3.Connection, fns: list[Write]) -> list[tuple[bool, Any]]:
        raise NotImplementedError


def _deliver(batch: list[_Job], outcomes: list[tuple[bool, Any]], path: Path, threadsafe: bool) -> None:
    """Hand the batch's outcomes to each caller's loop, in commit order, in one callback per loop
    (``threadsafe``: from another thread than the loop's)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, bool, Any]]] = {}
    for job, (ok, value) in zip(batch, outcomes, strict=True):
        by_loop.setdefault(job.loop, []).append((job, ok, value))
    for loop, items in by_loop.items():
        # A closed loop has nobody waiting any more (the writes are committed all the same).
        with contextlib.suppress(RuntimeError):
            if threadsafe:
                loop.call_soon_threadsafe(_resolve, items, path)
            else:
                _resolve(items, path)  # on the loop already: answered now, not a turn later


def _resolve(items: list[tuple[_Job, bool, Any]], path: Path) -> None:
    for job, ok, value in items:
        job.release()
        job.answered()
        on_commit_failed: BaseException | None = None
        if ok and job.on_commit is not None:
            # The projection follows every committed write, even one whose caller was cancelled.
            try:
                job.on_commit(value)
            except Exception as error:  # never strand the rest of the batch's callers
                on_commit_failed = error
        if job.future.done():
            continue
        if on_commit_failed is not None:
            job.future.set_exception(on_commit_failed)
        elif ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(_translated(value, path))


class WriterThread(_SqliteThread):
    """Every write, batched: whatever is queued when the thread is free becomes one transaction.

    A caller that is cancelled while waiting does not withdraw its write: it is queued, and it
    commits with the rest of its batch (its ``on_commit`` still runs).
    """

    name = "ledger-writer"
    #: Durations of the latest batches (BEGIN to COMMIT), seconds, for the daemon's status (``/metrics``).
    batch_seconds: collections.deque[float] | None = None

    #: The latest write's failure for want of room (None once a write commits): the daemon's status.
    full: LedgerFull | None = None
    #: The first such failure since the daemon last recorded the halt it calls for (sticky: a write
    #: that succeeds does not clear it; ``Ledger.record_halt_for_space`` does).
    full_since: LedgerFull | None = None

    async def write(self, fn: Callable[[sqlite3.Connection], T], on_commit: OnCommit | None = None) -> T:
        return await self.settle(self.submit(fn, on_commit))

    async def settle(self, future: asyncio.Future[T]) -> T:
        """Wait for a submitted write (``submit``, ``submit_many``); note a disk that is full."""
        try:
            result = await future
        except LedgerFull as error:
            self.full = error
            if self.full_since is None:
                self.full_since = error
            raise
        self.full = None
        return result

    def run_batch(self, conn: sqlite3.Connection, fns: list[Write]) -> list[tuple[bool, Any]]:
        started = time.perf_counter()
        try:
            return run_write_batch(conn, fns)
        finally:
            if self.batch_seconds is None:
                self.batch_seconds = collections.deque(maxlen=512)
            self.batch_seconds.append(time.perf_counter() - started)

    def commit_p99_s(self) -> float | None:
        """The p99 of the latest batches' durations (None before the first)."""
        recent = sorted(self.batch_seconds or ())
        return recent[min(len(recent) - 1, int(len(recent) * 0.99))] if recent else None


class ReaderThread(_SqliteThread):
    """Reads on their own connection; a batch of queued reads shares one snapshot."""

    name = "ledger-reader"

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self.submit(fn)

    def run_batch(self, conn: sqlite3.Connection, fns: list[Write]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        conn.execute("BEGIN")
        try:
            for fn in fns:
                try:
                    outcomes.append((True, fn(conn)))
                except Exception as error:
                    outcomes.append((False, error))
        finally:
            conn.execute("COMMIT")
        return outcomes


def run_write_batch(conn: sqlite3.Connection, writes: list[Write]) -> list[tuple[bool, Any]]:
    """Every write in one transaction, each isolated as if in its own savepoint; outcomes only once
    COMMIT returned.

    Writes almost never fail, so the batch first runs without savepoints (a savepoint and its release
    cost as much as a small write). If one raises, that transaction is rolled back whole and the batch
    runs again with each write in its own savepoint, so the failure rolls back only its own work. A
    write is a function of the database alone, so the second run sees exactly what the first did.
    """
    if len(writes) == 1:
        return [_run_alone(conn, writes[0])]
    conn.execute("BEGIN IMMEDIATE")
    try:
        outcomes: list[tuple[bool, Any]] = [(True, fn(conn)) for fn in writes]
    except Exception:
        conn.execute("ROLLBACK")
        return _run_isolated(conn, writes)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    _commit(conn)
    return outcomes


def _commit(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _run_alone(conn: sqlite3.Connection, fn: Write) -> tuple[bool, Any]:
    """Alone in its transaction, a write needs no savepoint: its failure rolls back only itself."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        value = fn(conn)
    except Exception as error:
        conn.execute("ROLLBACK")
        return False, error
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    _commit(conn)
    return True, value


def _run_isolated(conn: sqlite3.Connection, writes: list[Write]) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for fn in writes:
            conn.execute("SAVEPOINT write")
            try:
                outcomes.append((True, fn(conn)))
            except Exception as error:
                conn.execute("ROLLBACK TO write")
                outcomes.append((False, error))
            conn.execute("RELEASE write")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    _commit(conn)
    return outcomes
