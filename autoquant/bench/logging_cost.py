"""What logging costs the daemon: log calls per second, and the event loop's lateness with heavy logging.

Both go through ``autoquant.logs.configure_logging`` with a real file (under ``.bench/``), stderr thrown
away, and every line logged inside ``bind_worker`` and ``bound(decision_id=…, client_order_id=…)``
with Decimal fields, the way the execution worker logs an order.

* ``log_calls_per_s``: one task logging in a tight loop; the caller's side (the structlog chain and
  the queue put), which is what the loop pays. The queue is sized to hold the whole burst so nothing
  is dropped (a drop would be counted as a cheap call); ``log_lines_written_per_s`` is the same burst
  until the last line is in the file (the renderer process, or the writer thread, wrote it).
* ``loop_lag_p99_ms_quiet`` / ``_logging``: a task sleeps 1 ms in a loop and records how late it wakes,
  first alone, then while another task logs ``HEAVY_LINES_PER_S`` (in small batches, yielding between
  them, as fast as it can if it cannot keep up). That run uses the daemon's own queue size, so
  ``log_records_dropped`` is what the daemon would have dropped. ``logging_lag_ratio`` is logging over
  quiet, measured in the same run.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from structlog.typing import FilteringBoundLogger

from autoquant.bench.common import Sizes, percentile, progress, sample_loop_lag, scratch_dir
from autoquant.logs import (
    DEFAULT_QUEUE_SIZE,
    LoggingHandle,
    bind_worker,
    bound,
    configure_logging,
    get_logger,
)
from autoquant.runtime.config import LoggingSettings

#: The heavy-logging load on the loop: well above what the daemon logs while trading.
HEAVY_LINES_PER_S = 20_000
#: Lines logged between two yields to the loop (about 1 ms of the heavy load).
BATCH = 20
#: How long the lag sampler sleeps each time.
TICK_S = 0.001

_WARM_UP = 1_000
_QTY = Decimal(10)
_PRICE = Decimal("187.25")


@contextmanager
def _logging(directory: Path, queue_size: int) -> Iterator[LoggingHandle]:
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        handle = configure_logging(
            LoggingSettings(path=directory / "autoquant.log", level="info"),
            stderr=devnull,
            stderr_tty=False,
            queue_size=queue_size,
        )
        try:
            yield handle
        finally:
            handle.close(timeout_s=60.0)


def _log_burst(log: FilteringBoundLogger, count: int) -> None:
    for i in range(count):
        log.info("order_submitted", symbol="AAPL", side="buy", qty=_QTY, limit_price=_PRICE, n=i)


async def _calls_per_s(directory: Path, calls: int) -> tuple[float, float]:
    """Caller-side calls per second, and lines per second until the writer has written them all."""
    # Room for the warm-up, the burst and any stray library line.
    with _logging(directory, queue_size=_WARM_UP + calls + 1_000) as handle:
        log = get_logger("autoquant.workers.execution")
        ids = {"decision_id": "d-bench", "client_order_id": "c-bench", "broker_order_id": "b-bench"}
        with bound(worker="execution", **ids):
            _log_burst(log, _WARM_UP)  # warm-up: first-call caches, the file opened
            started = time.perf_counter()
            _log_burst(log, calls)
            called = time.perf_counter() - started
        handle.close(timeout_s=60.0)  # returns once the writer has written every queued line
        written = time.perf_counter() - started
        if handle.dropped:
            raise AssertionError(f"{handle.dropped} records dropped from a queue sized for the burst")
    return calls / called, calls / written


async def _log_heavily(stop: asyncio.Event) -> int:
    """Log at ``HEAVY_LINES_PER_S`` in batches of at most ``BATCH``, yielding after each; lines logged."""
    bind_worker("execution")
    log = get_logger("autoquant.workers.execution")
    clock = time.perf_counter
    started = clock()
    logged = 0
    with bound(decision_id="d-bench", client_order_id="c-bench", broker_order_id="b-bench"):
        while not stop.is_set():
            due = int((clock() - started) * HEAVY_LINES_PER_S) - logged
            batch = min(BATCH, due)
            if batch > 0:
                _log_burst(log, batch)
                logged += batch
            await asyncio.sleep(0)
    return logged


async def _lag_with_logging(directory: Path, duration_s: float) -> tuple[list[float], float, int]:
    with _logging(directory, queue_size=DEFAULT_QUEUE_SIZE) as handle:
        stop = asyncio.Event()
        logger = asyncio.create_task(_log_heavily(stop))
        started = time.perf_counter()
        try:
            lags = await sample_loop_lag(duration_s, TICK_S)
        finally:
            stop.set()
            logged = await logger
        rate = logged / (time.perf_counter() - started)
        handle.close(timeout_s=60.0)
        return lags, rate, handle.dropped


async def run(sizes: Sizes) -> dict[str, object]:
    with scratch_dir("logging") as directory:
        calls_per_s, written_per_s = await _calls_per_s(directory / "calls", sizes.log_calls)
        progress(f"logging: {calls_per_s:,.0f} calls/s, {written_per_s:,.0f} lines/s written")
        quiet = await sample_loop_lag(sizes.lag_seconds, TICK_S)
        busy, rate, dropped = await _lag_with_logging(directory / "lag", sizes.lag_seconds)
    quiet_p99 = percentile(quiet, 0.99) * 1000
    busy_p99 = percentile(busy, 0.99) * 1000
    progress(
        f"loop lag p99: quiet {quiet_p99:.3f} ms, logging {busy_p99:.3f} ms"
        f" ({rate:,.0f} lines/s, {dropped} dropped)"
    )
    return {
        "log_calls_per_s": round(calls_per_s),
        "log_lines_written_per_s": round(written_per_s),
        "loop_lag_p99_ms_quiet": round(quiet_p99, 3),
        "loop_lag_p99_ms_logging": round(busy_p99, 3),
        "logging_lag_ratio": round(busy_p99 / quiet_p99, 2) if quiet_p99 > 0 else None,
        "logging_lines_per_s_during_lag": round(rate),
        "log_records_dropped": dropped,
        "notes": [
            "log_calls_per_s: structlog calls through configure_logging (file under .bench/, bound"
            " worker and order ids, Decimal fields), the caller's side; log_lines_written_per_s:"
            " until they are all in the file",
            f"loop_lag: p99 lateness of a 1 ms asyncio.sleep, alone and while another task logs"
            f" up to {HEAVY_LINES_PER_S} lines/s in batches of {BATCH}; log_records_dropped is from"
            f" that run (queue of {DEFAULT_QUEUE_SIZE})",
        ],
    }
