"""Structured logging: JSON lines to a rotated file and to stderr (journald), never blocking the loop.

How a line is made. The calling code (the event loop, or a thread from ``asyncio.to_thread``) runs a
short structlog chain that only *collects*: the bound context (``worker``, ``decision_id``,
``client_order_id``, ``broker_order_id``), the level, the timestamp and, if there is one, the
traceback (``sys.exc_info`` belongs to the calling thread, so it cannot be read later). The event
dict then rides a stdlib ``LogRecord`` into a bounded queue. One writer thread renders and writes:
JSON to the file, JSON or console rendering to stderr. Rendering and every ``write()`` happen on that
thread, so a slow disk or a stalled journald pipe stalls the writer, not the loop. The processors of
both sides, and the key order of a line, are in ``autoquant.log_processors``; this module is the
plumbing between them: binding, the queue, the writer thread and its sinks, configuration.

Why structlog over the stdlib (and not structlog's own loggers): third-party libraries (asyncio,
uvicorn, websockets, alpaca-py) log through the stdlib; routing structlog through the stdlib root
logger puts their lines in the same file, in the same JSON shape, through the same queue.

Why a bounded queue that drops: an unbounded one turns a stuck sink into unbounded memory; a bounded
one that blocks would stall the loop. When the queue is full a record is dropped and counted, and the
writer reports ``log_records_dropped`` with the count as soon as it catches up.

Use: ``handle = configure_logging(config.logging)`` once at start; ``bind_worker("execution")`` at the
top of each worker task; ``with bound(decision_id=..., client_order_id=...):`` around the code that
handles one order; ``handle.close()`` at shutdown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import logging.handlers
import queue
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TextIO

import structlog

from autoquant.log_processors import (
    CONTEXT_ATTR,
    DEFAULT_WORKER,
    ID_KEYS,
    LEADING_KEYS,
    calling_chain,
    console_formatter,
    json_formatter,
    utc_timestamp,
)
from autoquant.runtime.config import LoggingSettings

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_WORKER",
    "ID_KEYS",
    "LEADING_KEYS",
    "NOISY_LOGGERS",
    "LoggingHandle",
    "bind_worker",
    "bound",
    "configure_logging",
    "get_logger",
]

#: Records held for the writer before new ones are dropped (and counted).
DEFAULT_QUEUE_SIZE: Final = 10_000
#: Chatty third-party loggers kept at INFO even when autoquant logs at DEBUG.
NOISY_LOGGERS: Final = ("aiosqlite", "asyncio", "websockets", "httpcore", "httpx", "urllib3", "hpack")


# --- binding ----------------------------------------------------------------------------------


def bind_worker(name: str) -> None:
    """Bind ``worker=name`` for the rest of the current task.

    Call it first thing inside the worker's coroutine: an asyncio task starts with a copy of its
    creator's context, so a binding made here stays inside this worker (and the tasks it creates).
    """
    structlog.contextvars.bind_contextvars(worker=name)


@contextlib.contextmanager
def bound(**ids: object) -> Iterator[None]:
    """Bind ids (``decision_id=``, ``client_order_id=``, …) to every line logged inside the block.

    ``None`` values are skipped, so ``bound(broker_order_id=order.broker_order_id)`` is safe before
    the broker has answered. Previous values are restored on exit, also across ``await``.
    """
    present = {key: value for key, value in ids.items() if value is not None}
    with structlog.contextvars.bound_contextvars(**present):
        yield


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (``log.info("order_submitted", qty=qty)``)."""
    return structlog.stdlib.get_logger(name)


# --- the queue and its writer ------------------------------------------------------------------


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Hands records to the writer without formatting them here, and drops (counting) when full."""

    def __init__(self, records: queue.Queue[logging.LogRecord | None]) -> None:
        super().__init__(records)
        self.dropped = 0
        self._lock = threading.Lock()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if isinstance(record.msg, dict):
            return record  # a structlog event dict: a fresh object per call, already complete
        # A stdlib record: freeze its message now (its args may change later) and carry the ids
        # bound where it was logged, since the writer thread does not share this context.
        prepared = logging.makeLogRecord(record.__dict__)
        prepared.msg, prepared.args = record.getMessage(), None
        setattr(prepared, CONTEXT_ATTR, structlog.contextvars.get_contextvars())
        return prepared

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            with self._lock:
                self.dropped += 1


class _SizeRotatingFile(logging.handlers.RotatingFileHandler):
    """Rotates by a running byte count and leaves flushing to the writer.

    The stdlib's ``shouldRollover`` formats every record a second time (3.11) and ``emit`` flushes per
    line; on the writer thread, which holds the GIL while it works, that doubled the per-line cost.
    """

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._size = path.stat().st_size if path.exists() else 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            size = len(line.encode("utf-8"))
            if self.maxBytes > 0 and self._size > 0 and self._size + size > self.maxBytes:
                self.doRollover()
                self._size = 0
            if self.stream is None:
                self.stream = self._open()
            self.stream.write(line)
            self._size += size
        except Exception:
            self.handleError(record)


class _UnflushedStream(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream sink whose flush the writer does once per burst."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)


class _Writer:
    """The one thread that renders records and touches the sinks."""

    def __init__(
        self,
        records: queue.Queue[logging.LogRecord | None],
        source: _DroppingQueueHandler,
        sinks: Sequence[logging.Handler],
    ) -> None:
        self._records = records
        self._source = source
        self._sinks = sinks
        self._reported_drops = 0
        self._thread = threading.Thread(target=self._run, name="autoquant-log-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Ask the writer to finish what is queued; True when it did within the timeout."""
        try:
            self._records.put(None, timeout=timeout_s)
        except queue.Full:
            return False
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while (record := self._records.get()) is not None:
            self._report_drops()
            self._emit(record)
            if self._records.empty():
                self._flush()  # once per burst, not once per line
        self._report_drops()
        self._flush()

    def _flush(self) -> None:
        for sink in self._sinks:
            with contextlib.suppress(Exception):  # a sink must never kill the writer
                sink.flush()

    def _report_drops(self) -> None:
        dropped = self._source.dropped
        if dropped == self._reported_drops:
            return
        count, self._reported_drops = dropped - self._reported_drops, dropped
        logger = logging.getLogger(__name__)
        event = {
            "event": "log_records_dropped",
            "level": "warning",
            "timestamp": utc_timestamp(datetime.now(UTC)),
            "worker": "logging",
            "count": count,
        }
        record = logger.makeRecord(logger.name, logging.WARNING, __file__, 0, event, (), None)
        # What ProcessorFormatter looks for to treat the record as a structlog event dict.
        record.__dict__.update(_logger=logger, _name="warning")
        self._emit(record)

    def _emit(self, record: logging.LogRecord) -> None:
        for sink in self._sinks:
            if record.levelno >= sink.level:
                try:
                    sink.handle(record)
                except Exception:  # a sink must never kill the writer; handleError prints why
                    sink.handleError(record)


# --- configuration ------------------------------------------------------------------------------


_active: LoggingHandle | None = None


class LoggingHandle:
    """What ``configure_logging`` set up; ``close()`` flushes, stops the writer and undoes it all."""

    def __init__(
        self,
        *,
        path: Path,
        queue_handler: _DroppingQueueHandler,
        writer: _Writer,
        sinks: Sequence[logging.Handler],
        restore: _Saved,
    ) -> None:
        self.path = path
        self._queue_handler = queue_handler
        self._writer = writer
        self._sinks = sinks
        self._restore = restore
        self._closed = False

    @property
    def dropped(self) -> int:
        """Records dropped so far because the writer had fallen behind."""
        return self._queue_handler.dropped

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued, stop the writer thread, close the file. Safe to call twice.

        If a sink is stuck for longer than ``timeout_s`` the writer is abandoned (it is a daemon
        thread) rather than hanging the shutdown.
        """
        global _active
        if self._closed:
            return
        self._closed = True
        root = logging.getLogger()
        root.removeHandler(self._queue_handler)
        finished = self._writer.stop(timeout_s)
        if finished:
            for sink in self._sinks:
                sink.close()
        self._restore.apply()
        if _active is self:
            _active = None

    def __enter__(self) -> LoggingHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@dataclasses.dataclass(frozen=True)
class _Saved:
    """The global state configure_logging changes, to put back on close."""

    structlog_config: Mapping[str, Any]
    root_level: int
    logger_levels: Mapping[str, int]

    @classmethod
    def capture(cls) -> _Saved:
        levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
        return cls(dict(structlog.get_config()), logging.getLogger().level, levels)

    def apply(self) -> None:
        structlog.configure(**self.structlog_config)
        logging.getLogger().setLevel(self.root_level)
        for name, level in self.logger_levels.items():
            logging.getLogger(name).setLevel(level)


def configure_logging(
    settings: LoggingSettings,
    *,
    stderr_tty: bool | None = None,
    stderr: TextIO | None = None,
    queue_size: int = DEFAULT_QUEUE_SIZE,
) -> LoggingHandle:
    """Send structlog and stdlib logging to ``settings.path`` (rotated) and stderr, via one writer thread.

    ``stderr_tty`` picks the stderr rendering (console on a TTY, JSON for journald); None asks the
    stream. ``stderr`` defaults to ``sys.stderr``. Only one configuration may be active at a time:
    close the previous handle first. With ``settings.backups == 0`` the file is never rotated (the
    stdlib's rule), so keep at least one backup.
    """
    global _active
    if _active is not None:
        raise RuntimeError("logging is already configured: close the previous LoggingHandle first")
    stream = sys.stderr if stderr is None else stderr
    console = stream.isatty() if stderr_tty is None else stderr_tty
    level = logging.getLevelNamesMapping()[settings.level.upper()]

    settings.path.parent.mkdir(parents=True, exist_ok=True)
    file_sink = _SizeRotatingFile(settings.path, max_bytes=settings.max_bytes, backups=settings.backups)
    file_sink.setFormatter(json_formatter())
    stderr_sink = _UnflushedStream(stream)
    stderr_sink.setFormatter(console_formatter() if console else json_formatter())
    sinks = (file_sink, stderr_sink)

    restore = _Saved.capture()
    records: queue.Queue[logging.LogRecord | None] = queue.Queue(maxsize=queue_size)
    queue_handler = _DroppingQueueHandler(records)
    writer = _Writer(records, queue_handler, sinks)
    writer.start()

    root = logging.getLogger()
    root.setLevel(level)
    if level < logging.INFO:
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
    root.addHandler(queue_handler)
    structlog.configure(
        processors=calling_chain(),
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a logger fetched at import time must follow this configuration and the
        # restored one after close().
        cache_logger_on_first_use=False,
    )
    handle = LoggingHandle(
        path=settings.path, queue_handler=queue_handler, writer=writer, sinks=sinks, restore=restore
    )
    _active = handle
    return handle
