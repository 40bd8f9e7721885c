"""``make soak``: the whole daemon kept busy for a while, its memory, loop lag and ledger watched.

``python -m autoquant.bench.soak [--seconds 600] [--sample-s 10]`` runs ``Daemon(config).run()`` in this
process (so the lag sampler shares its event loop) on the embedded paper exchange with a dozen symbols
at 50 ms synthetic bars, one SMA strategy each, the daemon's own JSON logging, and scheduled backups
every minute. Every ``--sample-s`` it records the process RSS, the p99 and max lateness of a 1 ms sleep
over the interval, the ledger's size (file and WAL), and where native memory sits (``native_memory``:
SQLite's, glibc's heap, the open connections), printed as a table on stderr; the last line on stdout is
one JSON object. ``memory_ok`` (exit 1 otherwise): SQLite's memory stays under its caches' bound, and
the rest stays within 10 % of its level at the end of warm-up (``judge`` says why the two are apart).
A loop that stops turning for over a second has every thread's stack written to ``.bench/soak-stalls.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from autoquant.bench.common import (
    BENCH_DIR,
    daemon_logging,
    percentile,
    progress,
    sample_loop_lag,
    scratch_dir,
)
from autoquant.bench.native_memory import native_memory, open_databases
from autoquant.ledger.connection import readonly_uri
from autoquant.runtime.config import Config, parse
from autoquant.runtime.daemon import Daemon, prefer_loop_latency
from autoquant.runtime.sdnotify import Notifier

SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "META", "NVDA", "TSLA", "AMD", "INTC", "ORCL", "IBM", "CSCO"]
BAR_SECONDS = 0.05
#: Memory outside SQLite's caches may grow this much after warm-up.
MEMORY_TOLERANCE = 0.10
#: SQLite's page cache per connection (its default ``cache_size`` of -2000 KiB), and what else a
#: connection holds (schema, cached statements), for SQLite's bound.
SQLITE_CACHE_MB = 2000 / 1024
SQLITE_OVERHEAD_MB = 1.0
TICK_S = 0.001
#: A loop that does not turn for this long gets every thread's stack written to ``STALLS``.
STALL_S = 1.0
STALLS = BENCH_DIR / "soak-stalls.txt"


@dataclass(frozen=True)
class Sample:
    at_s: float
    rss_mb: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    ledger_mb: float
    fills: int
    #: Incidents still open: a busy soak that stops trading says why here (each pauses its strategy).
    open_incidents: int = 0
    #: Native memory by owner (``native_memory``): SQLite's caches and statements, glibc's heap.
    sqlite_mb: float | None = None
    malloc_in_use_mb: float | None = None
    malloc_free_mb: float | None = None
    #: Open connections per database file (descriptors on each ``*.db``).
    databases: dict[str, int] = field(default_factory=dict)


def soak_config(root: Path) -> Config:
    return parse(
        {
            "ledger": {"path": str(root / "ledger.db")},
            "paper": {"state_path": str(root / "paper.db"), "latency_s": 0.02, "starting_cash": "10000000"},
            "marketdata": {"symbols": SYMBOLS, "bar_seconds": BAR_SECONDS},
            "strategies": [
                {"id": f"sma-{s.lower()}", "kind": "sma_cross", "symbol": s, "fast": 2, "slow": 5, "qty": "1"}
                for s in SYMBOLS
            ],
            "risk": {"max_orders_per_minute": 100_000},
            "reconcile": {"interval_s": 5.0},
            "backup": {"dir": str(root / "backups"), "every_s": 60.0, "keep": 2},
        }
    )


def rss_mb() -> float:
    """This process's resident set (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def ledger_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()) / 1e6


def counts(path: Path) -> tuple[int, int]:
    """(fills, open incidents) in the ledger."""
    with sqlite3.connect(readonly_uri(path), uri=True) as conn:
        fills = int(conn.execute("SELECT count(*) FROM fills").fetchone()[0])
        open_incidents = int(
            conn.execute(
                "SELECT count(*) FROM incidents i WHERE NOT EXISTS"
                " (SELECT 1 FROM incident_resolutions r WHERE r.incident_id = i.incident_id)"
            ).fetchone()[0]
        )
    return fills, open_incidents


async def watch_for_stalls(report: TextIO) -> None:
    """While the loop turns, keep pushing back a dump of every thread's stack; when it stops turning for
    ``STALL_S``, ``faulthandler`` (its own thread) writes that dump to ``report``: what the loop was
    stuck in, and what the other threads were doing meanwhile."""
    try:
        while True:
            faulthandler.dump_traceback_later(STALL_S, repeat=False, file=report)
            await asyncio.sleep(STALL_S / 10)
    finally:
        faulthandler.cancel_dump_traceback_later()


async def soak(root: Path, seconds: float, sample_s: float, stalls: TextIO) -> list[Sample]:
    config = soak_config(root)
    daemon = Daemon(config, notifier=Notifier(None))
    task = asyncio.create_task(daemon.run())
    watchdog = asyncio.create_task(watch_for_stalls(stalls))
    samples: list[Sample] = []
    started = time.monotonic()
    try:
        while not daemon.ready.is_set():
            if task.done():
                raise RuntimeError(f"the daemon stopped before it was ready: {task.exception()!r}")
            await asyncio.sleep(0.05)  # start-up polling; the soak's clock starts when it is ready
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            lags = await sample_loop_lag(min(sample_s, seconds - elapsed), TICK_S)
            if task.done():
                raise RuntimeError(f"the daemon stopped during the soak: {task.exception()!r}")
            fills, open_incidents = counts(config.ledger.path)
            native = native_memory()
            sample = Sample(
                at_s=round(time.monotonic() - started, 1),
                rss_mb=round(rss_mb(), 1),
                loop_lag_p99_ms=round(percentile(lags, 0.99) * 1000, 3),
                loop_lag_max_ms=round(max(lags) * 1000, 3),
                ledger_mb=round(ledger_mb(config.ledger.path), 2),
                fills=fills,
                open_incidents=open_incidents,
                sqlite_mb=native.sqlite_mb,
                malloc_in_use_mb=native.malloc_in_use_mb,
                malloc_free_mb=native.malloc_free_mb,
                databases=open_databases(),
            )
            samples.append(sample)
            progress(
                f"{sample.at_s:7.1f}s  rss {sample.rss_mb:7.1f} MB  lag p99 {sample.loop_lag_p99_ms:7.3f} ms"
                f"  max {sample.loop_lag_max_ms:7.1f} ms  ledger {sample.ledger_mb:8.2f} MB"
                f"  fills {sample.fills}  open incidents {sample.open_incidents}"
                f"  sqlite {sample.sqlite_mb} MB  malloc {sample.malloc_in_use_mb} MB"
                f" (+{sample.malloc_free_mb} MB free)  connections {sample.databases}"
            )
    finally:
        watchdog.cancel()
        daemon.request_stop()
        await asyncio.wait_for(task, timeout=config.daemon.drain_timeout_s + 10)
    return samples


def judge(samples: list[Sample]) -> dict[str, Any]:
    """Memory after warm-up against its level at the end of warm-up, and the run's summary.

    SQLite's page caches are meant to fill: each connection keeps up to ``cache_size`` (2 MiB, SQLite's
    default, which the ledger keeps) of the pages it read, and they fill as the ledger grows, over minutes
    at this load. So the memory is judged in two parts. SQLite's own (``sqlite3_memory_used``) must stay
    under its bound: the open connections times their cache plus ``SQLITE_OVERHEAD_MB`` each (schema, the
    128 statements Python's ``sqlite3`` caches). Everything else (RSS less SQLite's) must stay within
    ``MEMORY_TOLERANCE`` of its level at the end of warm-up (the first fifth of the run): a leak anywhere
    outside SQLite's caches grows it without bound. Where the SQLite counter is unavailable, the whole RSS
    is judged, as before.
    """
    warm = max(1, len(samples) // 5)

    def outside_sqlite(s: Sample) -> float:
        return s.rss_mb - (s.sqlite_mb or 0.0)

    baseline = samples[warm - 1]
    after = samples[warm:] or [baseline]
    growth = max(s.rss_mb for s in after) / baseline.rss_mb - 1
    growth_outside = max(outside_sqlite(s) for s in after) / outside_sqlite(baseline) - 1
    sqlite_peak = max((s.sqlite_mb or 0.0) for s in samples)
    connections = max(sum(s.databases.values()) for s in samples)
    sqlite_bound = connections * (SQLITE_CACHE_MB + SQLITE_OVERHEAD_MB)
    counted = baseline.sqlite_mb is not None
    return {
        "soak_seconds": samples[-1].at_s,
        "soak_symbols": len(SYMBOLS),
        "soak_bar_seconds": BAR_SECONDS,
        "soak_rss_mb_after_warmup": baseline.rss_mb,
        "soak_rss_mb_max": max(s.rss_mb for s in after),
        "soak_rss_growth_after_warmup": round(growth, 4),
        "soak_rss_growth_outside_sqlite": round(growth_outside, 4) if counted else None,
        "soak_sqlite_mb_max": sqlite_peak if counted else None,
        "soak_sqlite_connections": connections,
        "soak_sqlite_bound_mb": round(sqlite_bound, 1),
        "soak_loop_lag_p99_ms_max": max(s.loop_lag_p99_ms for s in samples),
        "soak_loop_lag_max_ms": max(s.loop_lag_max_ms for s in samples),
        "soak_ledger_mb": samples[-1].ledger_mb,
        "soak_fills": samples[-1].fills,
        "soak_open_incidents": samples[-1].open_incidents,
        "memory_ok": (
            growth_outside <= MEMORY_TOLERANCE and sqlite_peak <= sqlite_bound
            if counted
            else growth <= MEMORY_TOLERANCE
        ),
        "samples": [asdict(s) for s in samples],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autoquant.bench.soak", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to soak (default 10 minutes)")
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.sample_s <= 0:
        print("soak: --seconds and --sample-s must be positive", file=sys.stderr)
        return 2
    prefer_loop_latency()
    with scratch_dir("soak") as root, daemon_logging(root), STALLS.open("w") as stalls:
        samples = asyncio.run(soak(root, args.seconds, args.sample_s, stalls))
    report = judge(samples)
    report["soak_stall_dumps"] = STALLS.read_text().count("Timeout (")
    if report["soak_stall_dumps"]:
        stalled = report["soak_stall_dumps"]
        progress(f"the loop stalled {stalled} time(s) for over {STALL_S} s: stacks in {STALLS}")
    print(json.dumps(report), flush=True)
    return 0 if report["memory_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
