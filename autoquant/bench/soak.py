"""``make soak``: the whole daemon kept busy for a while, its memory, loop lag and ledger watched.

``python -m autoquant.bench.soak [--seconds 600] [--sample-s 10]`` runs ``Daemon(config).run()`` in this
process (so the lag sampler shares its event loop) on the embedded paper exchange with a dozen symbols
at 50 ms synthetic bars, one SMA strategy each, the daemon's own JSON logging, and scheduled backups
every minute. Every ``--sample-s`` it records the process RSS, the p99 and max lateness of a 1 ms sleep
over the interval, and the ledger's size (file and WAL), printed as a table on stderr; the last line on
stdout is one JSON object. Memory after warm-up (the first fifth of the run, at least one sample)
must stay within 10 % of its level at the end of warm-up (``memory_ok``; exit 1 otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from autoquant.bench.common import daemon_logging, percentile, progress, sample_loop_lag, scratch_dir
from autoquant.ledger.connection import readonly_uri
from autoquant.runtime.config import Config, parse
from autoquant.runtime.daemon import Daemon, prefer_loop_latency
from autoquant.runtime.sdnotify import Notifier

SYMBOLS = ["AAPL", "MSFT", "GOOG", "AMZN", "META", "NVDA", "TSLA", "AMD", "INTC", "ORCL", "IBM", "CSCO"]
BAR_SECONDS = 0.05
#: Memory may grow this much after warm-up.
MEMORY_TOLERANCE = 0.10
TICK_S = 0.001


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


async def soak(root: Path, seconds: float, sample_s: float) -> list[Sample]:
    config = soak_config(root)
    daemon = Daemon(config, notifier=Notifier(None))
    task = asyncio.create_task(daemon.run())
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
            sample = Sample(
                at_s=round(time.monotonic() - started, 1),
                rss_mb=round(rss_mb(), 1),
                loop_lag_p99_ms=round(percentile(lags, 0.99) * 1000, 3),
                loop_lag_max_ms=round(max(lags) * 1000, 3),
                ledger_mb=round(ledger_mb(config.ledger.path), 2),
                fills=fills,
                open_incidents=open_incidents,
            )
            samples.append(sample)
            progress(
                f"{sample.at_s:7.1f}s  rss {sample.rss_mb:7.1f} MB  lag p99 {sample.loop_lag_p99_ms:7.3f} ms"
                f"  max {sample.loop_lag_max_ms:7.1f} ms  ledger {sample.ledger_mb:8.2f} MB"
                f"  fills {sample.fills}  open incidents {sample.open_incidents}"
            )
    finally:
        daemon.request_stop()
        await asyncio.wait_for(task, timeout=config.daemon.drain_timeout_s + 10)
    return samples


def judge(samples: list[Sample]) -> dict[str, Any]:
    """Memory after warm-up against its level at the end of warm-up, and the run's summary."""
    warm = max(1, len(samples) // 5)
    baseline = samples[warm - 1].rss_mb
    after = [s.rss_mb for s in samples[warm:]] or [baseline]
    growth = max(after) / baseline - 1
    return {
        "soak_seconds": samples[-1].at_s,
        "soak_symbols": len(SYMBOLS),
        "soak_bar_seconds": BAR_SECONDS,
        "soak_rss_mb_after_warmup": baseline,
        "soak_rss_mb_max": max(after),
        "soak_rss_growth_after_warmup": round(growth, 4),
        "soak_loop_lag_p99_ms_max": max(s.loop_lag_p99_ms for s in samples),
        "soak_loop_lag_max_ms": max(s.loop_lag_max_ms for s in samples),
        "soak_ledger_mb": samples[-1].ledger_mb,
        "soak_fills": samples[-1].fills,
        "soak_open_incidents": samples[-1].open_incidents,
        "memory_ok": growth <= MEMORY_TOLERANCE,
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
    with scratch_dir("soak") as root, daemon_logging(root):
        samples = asyncio.run(soak(root, args.seconds, args.sample_s))
    report = judge(samples)
    print(json.dumps(report), flush=True)
    return 0 if report["memory_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
