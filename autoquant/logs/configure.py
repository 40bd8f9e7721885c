"""``configure_logging``: wire structlog and stdlib logging to the writer thread, and undo it on close.

Why structlog over the stdlib for our own lines, and the stdlib root logger for everyone else's:
third-party libraries (asyncio, uvicorn, websockets, alpaca-py) log through the stdlib; a root
handler puts their lines in the same file, in the same JSON shape, through the same queue. Our own
lines skip the stdlib machinery (``LogRecord``, handler locks), which cost more than the rest of a
log call.

Use: ``handle = configure_logging(config.logging)`` once at start; ``handle.dropped`` for the records
lost so far to a full queue; ``handle.close()`` at shutdown.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TextIO

import structlog

from autoquant.logs.processors import calling_chain
from autoquant.logs.records import QueueLoggerFactory, RecordQueue, StdlibHandler
from autoquant.logs.renderer import RendererProcess
from autoquant.logs.settings import LoggingSettings
from autoquant.logs.sinks import RotatingFile, StreamSink
from autoquant.logs.writer import REPORT_INTERVAL_S, Writer

#: Records held for the writer before new ones are dropped (and counted).
DEFAULT_QUEUE_SIZE: Final = 10_000
#: Chatty third-party loggers kept at INFO even when autoquant logs at DEBUG.
NOISY_LOGGERS: Final = ("asyncio", "websockets", "httpcore", "httpx", "urllib3", "hpack")

_active: LoggingHandle | None = None


class LoggingHandle:
    """What ``configure_logging`` set up; ``close()`` flushes, stops the writer and undoes it all."""

    def __init__(
        self,
        *,
        path: Path,
        records: RecordQueue,
        handler: StdlibHandler,
        writer: Writer,
        restore: _Saved,
    ) -> None:
        self.path = path
        self._records = records
        self._handler = handler
        self._writer = writer
        self._restore = restore
        self._closed = False

    @property
    def dropped(self) -> int:
        """Records dropped so far because the writer had fallen behind (a running total)."""
        return self._records.dropped

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued, stop the writer thread, close the file. Safe to call twice.

        If a sink is stuck for longer than ``timeout_s`` the writer is abandoned (it is a daemon
        thread) rather than hanging the shutdown.
        """
        global _active
        if self._closed:
            return
        self._closed = True
        # No new lines into this queue from here on, then drain it.
        self._restore.apply()
        logging.getLogger().removeHandler(self._handler)
        self._writer.stop(timeout_s)
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


def _file_descriptor(stream: TextIO) -> int | None:
    """The stream's file descriptor (flushed, so the renderer's lines follow what was written)."""
    try:
        fd = stream.fileno()
        stream.flush()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    return fd


def configure_logging(
    settings: LoggingSettings,
    *,
    stderr_tty: bool | None = None,
    stderr: TextIO | None = None,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    report_interval_s: float = REPORT_INTERVAL_S,
    renderer_process: bool = True,
) -> LoggingHandle:
    """Send structlog and stdlib logging to ``settings.path`` (rotated) and stderr, via one writer thread.

    ``stderr_tty`` picks the stderr rendering (console on a TTY, JSON for journald); None asks the
    stream. ``stderr`` defaults to ``sys.stderr``. ``report_interval_s`` is the fewest seconds between
    two ``log_records_dropped`` lines. ``renderer_process`` renders and writes in a child process
    (``autoquant.logs.renderer``), off the daemon's GIL; False keeps it all on the writer thread.
    Only one configuration may be active at a time: close the
    previous handle first. With ``settings.backups == 0`` the file is never rotated (the stdlib's
    rule), so keep at least one backup.
    """
    global _active
    if _active is not None:
        raise RuntimeError("logging is already configured: close the previous LoggingHandle first")
    stream = sys.stderr if stderr is None else stderr
    console = stream.isatty() if stderr_tty is None else stderr_tty
    level = logging.getLevelNamesMapping()[settings.level.upper()]

    settings.path.parent.mkdir(parents=True, exist_ok=True)
    settings.path.touch()  # a path that cannot be written fails here, not in the renderer

    def open_file() -> RotatingFile:
        return RotatingFile(settings.path, max_bytes=settings.max_bytes, backups=settings.backups)

    stderr_fd = _file_descriptor(stream) if renderer_process else None
    renderer = None
    if renderer_process:
        try:
            renderer = RendererProcess(
                settings.path,
                max_bytes=settings.max_bytes,
                backups=settings.backups,
                stderr_fd=stderr_fd,
                console=console,
            )
        except OSError:  # no interpreter to start (embedded, sys.executable empty): render here
            renderer, stderr_fd = None, None
    records = RecordQueue(queue_size)
    writer = Writer(
        records,
        renderer=renderer,
        open_file=open_file,
        stream=None if stderr_fd is not None else StreamSink(stream, console=console),
        report_interval_s=report_interval_s,
    )
    writer.start()

    restore = _Saved.capture()
    root = logging.getLogger()
    root.setLevel(level)
    if level < logging.INFO:
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
    handler = StdlibHandler(records)
    root.addHandler(handler)
    structlog.configure(
        processors=calling_chain(),
        logger_factory=QueueLoggerFactory(records),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Not cached: a logger fetched at import time must follow this configuration and the
        # restored one after close() (and structlog.testing.capture_logs needs that too).
        cache_logger_on_first_use=False,
    )
    handle = LoggingHandle(
        path=settings.path, records=records, handler=handler, writer=writer, restore=restore
    )
    _active = handle
    return handle
