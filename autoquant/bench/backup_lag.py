"""What an online backup costs the trading loop: loop lag while ``take_backup`` copies a long ledger.

The ledger is the start-up bench's history (``history``: a million fills with their orders, events
and decisions, built with direct SQL in the ledger's schema), copied to a scratch folder and migrated
forward. The ledger is open as the daemon holds it, a task appends a hold decision every 10 ms (a
trading loop's most frequent durable write), and the lag sampler (``common.sample_loop_lag``: how
late a 1 ms sleep wakes) runs twice: alone for a baseline, then while ``take_backup`` (the SQLite
backup API, verification and hashing) runs on a background thread (``in_background``, nice 10), as
the daemon's scheduled backups do.

* ``backup_loop_lag_p99_ms`` / ``_max_ms``: lateness during the backup; ``_quiet``: the baseline;
* ``backup_s``, ``backup_mb``: how long the verified backup took, and its size;
* ``backup_writes_during``: decisions committed while the backup ran (the writer never waits for it).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import UTC, datetime

from autoquant.bench.common import Sizes, percentile, progress, sample_loop_lag, scratch_dir
from autoquant.bench.history import cached_history, history_summary
from autoquant.domain.decisions import Action, Decision
from autoquant.ledger import Ledger
from autoquant.ledger.backup import in_background, take_backup
from autoquant.ledger.connection import migrate_file

WRITE_EVERY_S = 0.01


async def _keep_deciding(ledger: Ledger, stop: asyncio.Event) -> int:
    written = 0
    while not stop.is_set():
        moment = datetime.now(UTC)
        decision = Decision(
            decision_id=f"d-bench-{time.time_ns()}-{written}",
            strategy_id="sma-aapl",
            symbol="AAPL",
            action=Action.HOLD,
            reason="no_cross",
            data_time=moment,
        )
        await ledger.record_decision(decision, time.time_ns())
        written += 1
        await asyncio.sleep(WRITE_EVERY_S)
    return written


async def run(sizes: Sizes) -> dict[str, object]:
    history = cached_history(sizes.startup_fills, sizes.startup_open_orders)
    fills = history_summary(history)["fills"]
    with scratch_dir("backup") as scratch:
        path = scratch / "ledger.db"
        shutil.copyfile(history / "ledger.db", path)
        migrate_file(path)
        async with await Ledger.open(path) as ledger:
            stop = asyncio.Event()
            writer = asyncio.create_task(_keep_deciding(ledger, stop))
            quiet = await sample_loop_lag(sizes.lag_seconds)
            before = await ledger.last_seq()
            started = time.perf_counter()
            backup = asyncio.create_task(in_background(take_backup, path, scratch / "backup.db"))
            lags: list[float] = []
            while not backup.done():
                lags.extend(await sample_loop_lag(0.05))
            info = await backup
            took = time.perf_counter() - started
            during = await ledger.last_seq() - before
            stop.set()
            await writer
    quiet_p99 = percentile(quiet, 0.99) * 1000
    busy_p99, busy_max = percentile(lags, 0.99) * 1000, max(lags) * 1000
    progress(
        f"backup of {fills} fills ({info.size_bytes / 1e6:.0f} MB) in {took:.1f}s: loop lag p99 "
        f"{busy_p99:.3f} ms (quiet {quiet_p99:.3f} ms), max {busy_max:.1f} ms"
    )
    return {
        "backup_loop_lag_p99_ms": round(busy_p99, 3),
        "backup_loop_lag_max_ms": round(busy_max, 3),
        "backup_loop_lag_p99_ms_quiet": round(quiet_p99, 3),
        "backup_s": round(took, 2),
        "backup_mb": round(info.size_bytes / 1e6, 1),
        "backup_writes_during": during,
        "notes": [
            f"backup_loop_lag: p99 lateness of a 1 ms sleep while `take_backup` copies, verifies and hashes"
            f" a {fills}-fill ledger on a background thread (nice 10), a decision committed every 10 ms"
            " meanwhile"
        ],
    }
