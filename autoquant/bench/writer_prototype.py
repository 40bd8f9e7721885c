"""The reference the groundwork issue cites: a bare writer thread, measured beside the ledger.

The issue reports that "a 60-line prototype — one dedicated writer thread with its own ``sqlite3``
connection, a ``queue.SimpleQueue``, and each batch's futures resolved with
``loop.call_soon_threadsafe``" reached 0.69–0.82× the raw commit rate for one appender. This is that
prototype, writing the very rows the ledger writes (``insert_decision`` into a migrated ledger, its
journal trigger included) and nothing else: no savepoint fallback, no projection, no virtual-clock
hold, no failure translation. Measured in the same run as the ledger, it separates what this machine
allows an off-loop writer from what the ledger's own code costs (``ledger_vs_prototype``).
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autoquant.ledger.connection import migrate_file

_Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class PrototypeWriter:
    """One thread, one connection, whatever is queued committed as one transaction."""

    def __init__(self, path: Path) -> None:
        migrate_file(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="bench-prototype-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (first := self._jobs.get()) is not None:
            batch = [first]
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._jobs.put(None)
                    break
                batch.append(job)
            self._db.execute("BEGIN IMMEDIATE")
            results = [fn(self._db) for fn, _, _ in batch]
            self._db.execute("COMMIT")
            for (_, loop, future), result in zip(batch, results, strict=True):
                loop.call_soon_threadsafe(future.set_result, result)
        self._db.close()

    async def write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((fn, loop, future))
        return await future

    async def close(self) -> None:
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)
