"""What every bench group shares: run sizes, percentiles, a quiet logging setup, temp dirs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from autoquant.logs import configure_logging
from autoquant.runtime.config import LoggingSettings

#: Where the bench keeps its cached ledgers and its latest result.
BENCH_DIR = Path(".bench")


@dataclass(frozen=True)
class Sizes:
    """How much each group does; ``quick`` is the same work at a size that fits in a minute."""

    quick: bool
    #: Seconds each single-writer throughput measurement runs for.
    write_seconds: float
    #: Seconds the 64-appender concurrent measurement runs for.
    concurrent_seconds: float
    appenders: int
    risk_iterations: int
    ticks: int
    startup_fills: int
    startup_open_orders: int
    startup_runs: int
    inprocess_orders: int
    server_orders: int
    #: Log calls timed for ``log_calls_per_s``.
    log_calls: int
    #: Seconds the loop-lag sampler runs, once quiet and once with heavy logging.
    lag_seconds: float
    #: One-minute bars the backtest benchmark runs over (the target is stated for 100,000).
    backtest_bars: int = 100_000
    #: Bars the streaming passes (check, stream, equity) run over for their RSS (the target: 1,000,000).
    backtest_stream_bars: int = 1_000_000

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            quick=False,
            write_seconds=5.0,
            concurrent_seconds=5.0,
            appenders=64,
            risk_iterations=200_000,
            ticks=2_000,
            startup_fills=1_000_000,
            startup_open_orders=100,
            startup_runs=3,
            inprocess_orders=3_000,
            server_orders=500,
            log_calls=100_000,
            lag_seconds=3.0,
        )

    @classmethod
    def reduced(cls) -> Sizes:
        return cls(
            quick=True,
            write_seconds=1.0,
            concurrent_seconds=1.5,
            appenders=64,
            risk_iterations=20_000,
            ticks=300,
            startup_fills=50_000,
            startup_open_orders=100,
            startup_runs=1,
            inprocess_orders=300,
            server_orders=100,
            log_calls=20_000,
            lag_seconds=1.5,
            backtest_bars=5_000,
            backtest_stream_bars=100_000,
        )

    @classmethod
    def tiny(cls) -> Sizes:
        """For the smoke test: every path runs, nothing is meaningful."""
        return cls(
            quick=True,
            write_seconds=0.2,
            concurrent_seconds=0.3,
            appenders=64,
            risk_iterations=2_000,
            ticks=30,
            startup_fills=2_000,
            startup_open_orders=20,
            startup_runs=1,
            inprocess_orders=30,
            server_orders=20,
            log_calls=2_000,
            lag_seconds=0.2,
            backtest_bars=1_000,
            backtest_stream_bars=2_000,
        )


def percentile(samples: list[int] | list[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of unsorted samples."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
    return float(ordered[min(rank, len(ordered)) - 1])


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the collector out of a timed loop (collect first, so it has nothing pending)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def daemon_logging(directory: Path) -> Iterator[None]:
    """The daemon's own logging (JSON file through the writer thread), stderr thrown away.

    The hot paths log on every order; measuring them with logging off would flatter them.
    """
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        handle = configure_logging(
            LoggingSettings(path=directory / "bench.log", level="info"), stderr=devnull, stderr_tty=False
        )
        try:
            yield
        finally:
            handle.close()


def progress(message: str) -> None:
    """A progress line on stderr; stdout's last line is reserved for the JSON result."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def scratch_dir(name: str) -> Iterator[Path]:
    """A temporary directory under ``.bench/`` (the repository's disk, where a ledger would live:
    ``/tmp`` may be a RAM disk, which would make every fsync free)."""
    BENCH_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"tmp-{name}-", dir=BENCH_DIR) as tmp:
        yield Path(tmp)


async def sample_loop_lag(duration_s: float, tick_s: float = 0.001) -> list[float]:
    """How late (seconds) each ``sleep(tick_s)`` of this event loop woke, for ``duration_s``."""
    lags: list[float] = []
    clock = time.perf_counter
    end = clock() + duration_s
    while (before := clock()) < end:
        await asyncio.sleep(tick_s)
        lags.append(clock() - before - tick_s)
    return lags
