"""Durable appends: raw SQLite commits, the ledger's single appends, and 64 concurrent appenders.

The baseline is what SQLite itself can do with the ledger's durability settings (WAL,
``synchronous=FULL``): one small INSERT per transaction, so one fsync each. The ledger's single
append (``record_decision``: every bar of every strategy records one, holds included, so it is the
most frequent write) pays the same fsync plus two thread hops (to the ledger's writer thread and
back). With 64 concurrent appenders the writer shares one fsync among a whole batch, which is how it
beats the per-transaction baseline.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from autoquant.bench.common import Sizes, percentile, progress, scratch_dir
from autoquant.domain.decisions import Action, Decision
from autoquant.ledger import Ledger

_EPOCH = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def raw_commits(directory: Path, seconds: float) -> tuple[float, float]:
    """Plain ``sqlite3``: one small INSERT per transaction, WAL and ``synchronous=FULL``.

    Returns (commits per second, p99 of one commit in ms): the disk's floor under any durable write,
    and so under the tick path, which commits once before it submits."""
    conn = sqlite3.connect(directory / "raw.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, name TEXT NOT NULL, ts INTEGER NOT NULL)")
        samples: list[int] = []
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            began = time.perf_counter_ns()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO events (name, ts) VALUES (?, ?)", (f"event-{len(samples)}", began))
            conn.execute("COMMIT")
            samples.append(time.perf_counter_ns() - began)
            now = time.perf_counter()
            if now >= deadline:
                return len(samples) / (now - start), percentile(samples, 0.99) / 1e6
    finally:
        conn.close()


def hold_decisions(strategy_id: str, count: int, offset: int = 0) -> list[Decision]:
    """``count`` hold decisions on consecutive bars, built before timing starts."""
    decisions = []
    for i in range(offset, offset + count):
        decisions.append(
            Decision(
                decision_id=f"d-{strategy_id}-{i}",
                strategy_id=strategy_id,
                symbol="AAPL",
                action=Action.HOLD,
                reason="no_cross",
                data_time=_EPOCH + timedelta(seconds=i),
                inputs={"close": "187.25", "fast_sma": "187.1", "slow_sma": "187.3"},
            )
        )
    return decisions


async def ledger_appends_per_s(directory: Path, seconds: float, estimate: float) -> float:
    """One ``record_decision`` per await, one appender: each append is its own durable commit."""
    ledger = await Ledger.open(directory / "single.db")
    try:
        # Enough decisions for the whole run (the raw rate bounds ours), built before the clock starts.
        decisions = hold_decisions("single", int(estimate * seconds * 1.5) + 100)
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        for decision in decisions:
            await ledger.record_decision(decision, time.time_ns())
            count += 1
            now = time.perf_counter()
            if now >= deadline:
                return count / (now - start)
        return count / (time.perf_counter() - start)
    finally:
        await ledger.close()


async def concurrent_appends_per_s(directory: Path, seconds: float, appenders: int, estimate: float) -> float:
    """``appenders`` tasks each appending decisions in a loop, sharing one ledger (group commit)."""
    ledger = await Ledger.open(directory / "concurrent.db")
    try:
        per_task = int(estimate * seconds * 20 / appenders) + 50
        batches = [hold_decisions(f"s{n}", per_task) for n in range(appenders)]
        done = [0] * appenders
        start = time.perf_counter()
        deadline = start + seconds

        async def appender(n: int) -> None:
            for decision in batches[n]:
                if time.perf_counter() >= deadline:
                    return
                await ledger.record_decision(decision, time.time_ns())
                done[n] += 1

        await asyncio.gather(*(appender(n) for n in range(appenders)))
        return sum(done) / (time.perf_counter() - start)
    finally:
        await ledger.close()


async def thread_hop_us(rounds: int = 2_000) -> float:
    """p50 of one round trip loop -> another thread -> loop (``SimpleQueue`` out, ``call_soon_threadsafe``
    back) doing no work: what any writer that keeps fsync off the event loop pays per write on top of
    the commit itself. On a VM each wake of a sleeping thread can cost more than an fsync."""
    jobs: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None] = (
        queue.SimpleQueue()
    )

    def echo() -> None:
        while (job := jobs.get()) is not None:
            loop, future = job
            loop.call_soon_threadsafe(future.set_result, None)

    thread = threading.Thread(target=echo, name="bench-hop", daemon=True)
    thread.start()
    loop = asyncio.get_running_loop()
    samples = []
    try:
        for _ in range(rounds):
            future: asyncio.Future[None] = loop.create_future()
            start = time.perf_counter_ns()
            jobs.put((loop, future))
            await future
            samples.append(time.perf_counter_ns() - start)
    finally:
        jobs.put(None)
        thread.join()
    return percentile(samples, 0.50) / 1000


async def run(sizes: Sizes) -> dict[str, object]:
    with scratch_dir("writes") as directory:
        raw, raw_p99_ms = raw_commits(directory, sizes.write_seconds)
        progress(f"sqlite raw commits: {raw:.0f}/s, p99 {raw_p99_ms:.2f} ms")
        hop_us = await thread_hop_us()
        # The best ratio a writer off the loop can reach here: a raw commit plus one empty round trip.
        ceiling = (1e6 / raw) / (1e6 / raw + hop_us)
        progress(f"thread round trip p50: {hop_us:.0f} µs (off-loop ceiling of ledger_vs_raw: {ceiling:.2f})")
        single = await ledger_appends_per_s(directory, sizes.write_seconds, raw)
        progress(f"ledger appends (record_decision, one at a time): {single:.0f}/s")
        concurrent = await concurrent_appends_per_s(directory, sizes.concurrent_seconds, sizes.appenders, raw)
        progress(f"ledger appends, {sizes.appenders} concurrent: {concurrent:.0f}/s")
    return {
        "sqlite_raw_commit_per_s": round(raw, 1),
        "sqlite_raw_commit_p99_ms": round(raw_p99_ms, 3),
        "ledger_append_per_s": round(single, 1),
        "ledger_vs_raw": round(single / raw, 3),
        "thread_hop_p50_us": round(hop_us, 1),
        "ledger_vs_raw_offloop_ceiling": round(ceiling, 3),
        "ledger_append_concurrent_per_s": round(concurrent, 1),
        "concurrent_vs_raw": round(concurrent / raw, 3),
    }
