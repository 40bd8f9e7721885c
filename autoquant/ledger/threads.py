"""The two threads every ledger statement runs on, and how a batch of writes becomes one transaction.

``WriterThread`` owns the only writing connection: it takes whatever writes are queued and runs them
in one ``BEGIN IMMEDIATE`` transaction, each isolated as if in its own savepoint (one fsync for the
batch; one writer's failure rolls back only its own work, see ``run_write_batch``) and releases the
results only after COMMIT returns: nobody is told "recorded" before it is durable. ``ReaderThread``
owns a separate read-only connection; under WAL a read never waits for the writer's fsync.

Both are a plain ``threading.Thread`` with its own ``sqlite3`` connection and a ``queue.SimpleQueue``;
results go back to the caller's loop with ``call_soon_threadsafe``. This replaced aiosqlite, which
has no public way to run a whole transaction on its thread in one hop (we had to call its private
``Connection._execute``) and which serialised reads behind writes on one connection. A backtest's
scratch ledger runs the same batches on the loop itself (``on_loop``), right after the turn that
queued them.
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
from typing import Any, TypeVar

from autoquant.clocks import hold_time
from autoquant.errors import LedgerError, LedgerFull
from autoquant.ledger.connection import translate

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], Any]
#: Run on the loop, in commit order, with a committed write's result (the in-memory projection).
OnCommit = Callable[[Any], None]


def _translated(error: BaseException, path: Path) -> BaseException:
    return translate(error, path) if isinstance(error, sqlite3.Error) else error


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
