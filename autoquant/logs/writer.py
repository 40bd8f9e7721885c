"""The one thread that moves records from the queue to where they are rendered and written.

The writer blocks on the queue (releasing the GIL) until a record arrives, sleeps a moment (GIL
released) so that a batch gathers and the event loop is sure to get the GIL, takes what is queued (up
to a batch), and hands the batch on: pickled in one C call to the renderer process
(``autoquant.logs.renderer``), which renders and writes the file (and stderr when it is a real file
descriptor). Without the process (``renderer_process=False``, or if it fails to start or dies) the
writer renders and writes the file itself, in smaller batches, since rendering holds the GIL. A
stderr that is not a file descriptor (a ``StringIO`` in tests) is always written from here. A slow
disk or a stalled journald pipe stalls this thread or that process, never the loop.

Dropped records are reported here: when the queue's drop count has grown, a ``log_records_dropped``
warning with the number dropped since the last report (``count``) and the running total (``total``)
goes out ahead of the batch, at most once per ``report_interval_s`` (a flood must not turn into a
flood of reports), and always on stop.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Final

from autoquant.logs.lines import EventDict, TimestampText, ordered, render_lines
from autoquant.logs.records import STOP, RecordQueue
from autoquant.logs.renderer import RendererProcess
from autoquant.logs.sinks import RotatingFile, StreamSink

#: Records per batch when the renderer process renders (pickling 128 takes about 0.25 ms here).
PROCESS_BATCH: Final = 128
#: Records per batch when this thread renders; bounds how long it holds the GIL (about 0.6 ms here).
THREAD_BATCH: Final = 64
#: How long the writer waits, GIL released, after the first record of a batch arrives.
LINGER_S: Final = 0.002
#: How long the writer sleeps before a batch when it is behind.
YIELD_S: Final = 0.0002
#: The fewest seconds between two ``log_records_dropped`` reports while running.
REPORT_INTERVAL_S: Final = 1.0


class Writer:
    """Drains the queue into the renderer process or the file, and the stream, until ``stop``."""

    def __init__(
        self,
        records: RecordQueue,
        *,
        renderer: RendererProcess | None,
        open_file: Callable[[], RotatingFile],
        stream: StreamSink | None,
        report_interval_s: float = REPORT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._records = records
        self._renderer = renderer
        self._open_file = open_file
        self._file: RotatingFile | None = None if renderer is not None else open_file()
        self._stream = stream
        self._console = stream is not None and stream.console
        self._report_interval_s = report_interval_s
        self._clock = clock
        self._reported = 0
        self._last_report = -float("inf")
        self._timestamp = TimestampText()
        self._thread = threading.Thread(target=self._run, name="autoquant-log-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Write what is queued, report any drop not yet reported; True when done within the timeout."""
        deadline = time.monotonic() + timeout_s
        self._records.put_stop()
        self._thread.join(timeout_s)
        finished = not self._thread.is_alive()
        if self._renderer is not None:
            if finished:
                finished = self._renderer.close(max(0.0, deadline - time.monotonic())) is not None
            else:
                self._renderer.kill()
        if finished and self._file is not None:
            self._file.close()
        return finished

    def _run(self) -> None:
        if self._renderer is not None and not self._renderer.wait_ready():
            self._renderer_gone()
        items, sleep, empty = self._records.items, time.sleep, queue.Empty
        get, get_nowait, size = items.get, items.get_nowait, items.qsize
        stopping = False
        while not stopping:
            batch: list[Any] = [get()]
            limit = PROCESS_BATCH if self._renderer is not None else THREAD_BATCH
            # A release for a write() alone is often too short for the loop to take the GIL over.
            sleep(LINGER_S if size() < limit else YIELD_S)
            try:
                while len(batch) < limit:
                    batch.append(get_nowait())
            except empty:
                pass
            if STOP in batch:  # anything queued after the stop was logged after close(): not ours
                batch = batch[: batch.index(STOP)]
                stopping = True
            self._write(self._drop_report(force=stopping) + batch)

    def _drop_report(self, *, force: bool) -> list[EventDict]:
        dropped = self._records.dropped
        if dropped == self._reported:
            return []
        now = self._clock()
        if not force and now - self._last_report < self._report_interval_s:
            return []
        count, self._reported, self._last_report = dropped - self._reported, dropped, now
        return [
            {
                "event": "log_records_dropped",
                "level": "warning",
                "timestamp": time.time_ns(),
                "worker": "logging",
                "count": count,
                "total": dropped,
            }
        ]

    def _write(self, batch: list[EventDict]) -> None:
        if not batch:
            return
        to_file = True
        if self._renderer is not None:
            try:
                self._renderer.send(batch)
                to_file = False
            except OSError:
                self._renderer_gone()
        if not to_file and self._stream is None:
            return
        timestamp = self._timestamp
        events = [ordered(event, timestamp) for event in batch]
        lines = render_lines(events) if to_file or not self._console else []
        if self._stream is not None:
            if self._console:
                self._guarded(self._stream.write_console, events)
            else:
                self._guarded(self._stream.write, lines)
        if to_file and self._file is not None:
            self._guarded(self._file.write, lines)

    def _renderer_gone(self) -> None:
        """The process did not start or has died: render here from now on, after a line that says so."""
        assert self._renderer is not None
        code = self._renderer.close(1.0)
        self._renderer = None
        self._file = self._open_file()
        notice: EventDict = {
            "event": "log_renderer_exited",
            "level": "error",
            "timestamp": time.time_ns(),
            "worker": "logging",
            "exit_code": code,
        }
        self._guarded(self._file.write, render_lines([ordered(notice, self._timestamp)]))

    @staticmethod
    def _guarded(write: Callable[[Any], None], batch: object) -> None:
        try:
            write(batch)
        except Exception:  # a sink must never kill the writer; say why where an operator sees it
            traceback.print_exc(file=sys.__stderr__)
