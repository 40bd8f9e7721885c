"""The hand-off from the calling thread to the writer: a bounded queue that drops, and counts, when full.

Two ways in, both cheap for the caller. structlog events arrive through ``QueueLogger``, the "logger"
at the end of the calling chain: its every method puts the event dict, as is, on the queue.
Records of stdlib loggers (asyncio, uvicorn, websockets, alpaca-py…) arrive through ``StdlibHandler``
on the root logger, which turns each into the same kind of dict on the calling thread: the message
frozen (its args may change later) and the ids bound where it was logged (the writer thread does not
share that context).

Why a bounded queue that drops: an unbounded one turns a stuck sink into unbounded memory; a bounded
one that blocks would stall the loop. ``queue.SimpleQueue`` is implemented in C: a put is one call
that never blocks, and the writer's ``get`` releases the GIL while it waits.
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from typing import Any

import structlog

from autoquant.logs.lines import EventDict

#: What the writer finds at the end of the queue when it should stop.
STOP: Any = None


class RecordQueue:
    """Holds at most ``maxsize`` event dicts for the writer; a put beyond that is dropped and counted.

    With several threads logging at once the bound can be overshot by a record or two (the size is
    read, then the put made); the count of drops is always exact.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"queue size must be at least 1, not {maxsize}")
        self.items: queue.SimpleQueue[EventDict | None] = queue.SimpleQueue()
        self._maxsize = maxsize
        self._size = self.items.qsize
        self._put = self.items.put
        self._dropped = 0
        self._lock = threading.Lock()

    @property
    def dropped(self) -> int:
        """Records refused so far because the queue was full."""
        return self._dropped

    def put(self, event: EventDict) -> None:
        """Queue ``event``, or drop and count it when the queue is full; never blocks."""
        if self._size() < self._maxsize:
            self._put(event)
            return
        with self._lock:
            self._dropped += 1

    def put_stop(self) -> None:
        """Ask the writer to stop after what is queued (past the bound: a stop is never dropped)."""
        self._put(STOP)


class QueueLogger:
    """The structlog "logger" of the calling chain: every level's method queues the event dict."""

    def __init__(self, records: RecordQueue) -> None:
        put = records.put
        self.msg = self.debug = self.info = self.warning = self.warn = put
        self.error = self.err = self.critical = self.fatal = self.exception = self.log = put


class QueueLoggerFactory:
    """``logger_factory`` for structlog: every logger is the one ``QueueLogger`` (names are not used)."""

    def __init__(self, records: RecordQueue) -> None:
        self._logger = QueueLogger(records)

    def __call__(self, *args: object) -> QueueLogger:
        return self._logger


class StdlibHandler(logging.Handler):
    """Root handler for stdlib records: the same dict shape as a structlog event, made on the caller."""

    def __init__(self, records: RecordQueue) -> None:
        super().__init__()
        self._records = records

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: emit touches nothing shared but the queue, which is thread-safe.
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event: EventDict = {
                "event": record.getMessage(),
                "level": record.levelname.lower(),
                "logger": record.name,
                "timestamp": round(record.created * 1_000_000) * 1000,
            }
            for key, value in structlog.contextvars.get_contextvars().items():
                event.setdefault(key, value)
            if record.exc_info and record.exc_info[0] is not None:
                event["traceback"] = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        except Exception:
            self.handleError(record)
            return
        self._records.put(event)
