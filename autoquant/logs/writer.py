"""The one thread that renders and writes: whole batches, few Python operations per record.

The writer blocks on the queue (releasing the GIL) until a record arrives, then takes everything
queued (up to ``MAX_BATCH``), renders each record once to JSON, and hands the batch to every sink
in one write. A slow disk or a stalled journald pipe stalls this thread, not the loop.

Dropped records are reported here: when the queue's drop count has grown, a ``log_records_dropped``
warning with the number dropped since the last report goes out ahead of the batch, at most once per
``report_interval_s`` (a flood must not turn into a flood of reports), and always on stop.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Final

from autoquant.logs.lines import EventDict, TimestampText, encode_json, ordered
from autoquant.logs.records import STOP, RecordQueue
from autoquant.logs.sinks import RotatingFile, StreamSink

#: Records rendered and written in one go; bounds how long the writer holds the GIL at a stretch.
MAX_BATCH: Final = 32
#: How long the writer waits, GIL released, after the first record of a batch arrives.
LINGER_S: Final = 0.002
#: How long the writer sleeps between two batches when it is behind.
YIELD_S: Final = 0.0002
#: The fewest seconds between two ``log_records_dropped`` reports while running.
REPORT_INTERVAL_S: Final = 1.0


class Writer:
    """Drains the queue into the sinks on its own thread until ``stop``."""

    def __init__(
        self,
        records: RecordQueue,
        file: RotatingFile,
        stream: StreamSink,
        *,
        report_interval_s: float = REPORT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._records = records
        self._file = file
        self._stream = stream
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
        self._records.put_stop()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        items, sleep, empty = self._records.items, time.sleep, queue.Empty
        get, get_nowait, size = items.get, items.get_nowait, items.qsize
        stopping = False
        while not stopping:
            batch: list[Any] = [get()]
            # Sleep, GIL released, before the batch: a moment in which the event loop is sure to get
            # the GIL (a release for a write() alone is often too short for it to take over), and,
            # when there is no backlog, time for a batch to gather (one wake-up per LINGER_S, not
            # one per record).
            sleep(LINGER_S if size() < MAX_BATCH else YIELD_S)
            try:
                while len(batch) < MAX_BATCH:
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
        timestamp = self._timestamp
        events = [ordered(event, timestamp) for event in batch]
        try:
            lines = list(map(encode_json, events))
        except Exception:  # a value that cannot be rendered must not lose its batch-mates
            lines = [self._render_one(event) for event in events]
        self._guarded(self._file.write, lines)
        if self._stream.console:
            self._guarded(self._stream.write_console, events)
        else:
            self._guarded(self._stream.write, lines)

    @staticmethod
    def _render_one(event: EventDict) -> str:
        try:
            return encode_json(event)
        except Exception as error:
            fallback: EventDict = {
                key: event[key] for key in ("timestamp", "level", "event", "worker") if key in event
            }
            fallback["render_error"] = repr(error)
            return encode_json(fallback)

    @staticmethod
    def _guarded(write: Callable[..., None], batch: object) -> None:
        try:
            write(batch)
        except Exception:  # a sink must never kill the writer; say why where an operator sees it
            traceback.print_exc(file=sys.__stderr__)
