"""Durable appends: raw SQLite commits, the ledger's single appends, and 64 concurrent appenders.

The baseline is what SQLite itself can do with the ledger's durability settings (WAL,
``synchronous=FULL``): one small INSERT per transaction, so one fsync each. The ledger's single
append (``record_decision``: every bar of every strategy records one, holds included, so it is the
most frequent write) pays the same fsync plus two thread hops (to the ledger's writer thread and
back). With 64 concurrent appenders the writer shares one fsync among a whole batch, which is how it
beats the per-transaction baseline.

Beside the ledger runs the bare writer prototype the groundwork issue cites (``writer_prototype``),
writing the same rows. The contestants take turns in short slices, round after round, so a load
that drifts on a shared machine weighs on each of them alike and the ratios compare like with like.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from autoquant.bench.common import Sizes, percentile, progress, scratch_dir
from autoquant.bench.writer_prototype import PrototypeWriter
from autoquant.domain.decisions import Action, Decision
from autoquant.ledger import Ledger
from autoquant.ledger.rows import insert_decision

_EPOCH = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
#: Slices per contestant: each runs ``seconds / ROUNDS`` at a time, in turn with the others.
ROUNDS = 10

#: Appends as many as it can until the deadline (a ``perf_counter`` value); returns how many.
Slice = Callable[[float], Awaitable[int]]


class RawCommits:
    """Plain ``sqlite3``: one small INSERT per transaction, WAL and ``synchronous=FULL``: the disk's
    floor under any durable write, and so under the tick path, which commits once before it submits."""

    def __init__(self, path: Path) -> None:
        self.samples: list[int] = []
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, name TEXT NOT NULL, ts INTEGER NOT NULL)"
        )

    async def until(self, deadline: float) -> int:
        count = 0
        while time.perf_counter() < deadline:
            began = time.perf_counter_ns()
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT INTO events (name, ts) VALUES (?, ?)", (f"e-{len(self.samples)}", began))
            self._db.execute("COMMIT")
            self.samples.append(time.perf_counter_ns() - began)
            count += 1
        return count

    def close(self) -> None:
        self._db.close()


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


def endless_decisions(strategy_id: str) -> Iterator[Decision]:
    """Hold decisions on consecutive bars, without end (each append needs a new decision id)."""
    offset = 0
    while True:
        yield from hold_decisions(strategy_id, 1_000, offset)
        offset += 1_000


def appenders_slice(append: Callable[[Decision], Awaitable[object]], appenders: int, name: str) -> Slice:
    """``appenders`` tasks each appending its own decisions in a loop until the deadline."""
    streams = [endless_decisions(f"{name}{n}") for n in range(appenders)]

    async def until(deadline: float) -> int:
        done = [0] * appenders

        async def appender(n: int) -> None:
            for decision in streams[n]:
                if time.perf_counter() >= deadline:
                    return
                await append(decision)
                done[n] += 1

        await asyncio.gather(*(appender(n) for n in range(appenders)))
        return sum(done)

    return until


def _inserting(decision: Decision, local_ts_ns: int) -> Callable[[sqlite3.Connection], bool]:
    return lambda conn: insert_decision(conn, decision, local_ts_ns)


async def interleaved(contestants: dict[str, Slice], seconds: float) -> dict[str, float]:
    """Appends per second of each contestant, measured in turns of ``seconds / ROUNDS``."""
    counts = dict.fromkeys(contestants, 0)
    spent = dict.fromkeys(contestants, 0.0)
    for _ in range(ROUNDS):
        for name, run_until in contestants.items():
            start = time.perf_counter()
            counts[name] += await run_until(start + seconds / ROUNDS)
            spent[name] += time.perf_counter() - start
    return {name: counts[name] / spent[name] for name in contestants}


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
        hop_us = await thread_hop_us()
        raw = RawCommits(directory / "raw.db")
        single_ledger = await Ledger.open(directory / "single.db")
        many_ledger = await Ledger.open(directory / "concurrent.db")
        single_proto = PrototypeWriter(directory / "prototype-single.db")
        many_proto = PrototypeWriter(directory / "prototype-concurrent.db")

        appended = {single_ledger: 0, many_ledger: 0}

        def record(ledger: Ledger) -> Callable[[Decision], Awaitable[bool]]:
            def append(decision: Decision) -> Awaitable[bool]:
                appended[ledger] += 1
                return ledger.record_decision(decision, time.time_ns())

            return append

        def prototype(writer: PrototypeWriter) -> Callable[[Decision], Awaitable[object]]:
            return lambda decision: writer.write(_inserting(decision, time.time_ns()))

        try:
            alone = await interleaved(
                {
                    "raw": raw.until,
                    "ledger": appenders_slice(record(single_ledger), 1, "single"),
                    "prototype": appenders_slice(prototype(single_proto), 1, "proto"),
                },
                sizes.write_seconds,
            )
            n = sizes.appenders
            batches_before, appended[many_ledger] = many_ledger.write_batches, 0
            many = await interleaved(
                {
                    "raw": raw.until,
                    "ledger": appenders_slice(record(many_ledger), n, "many"),
                    "prototype": appenders_slice(prototype(many_proto), n, "protomany"),
                },
                sizes.concurrent_seconds,
            )
            # Appends per transaction (so per fsync) with 64 appenders: the group commit at work.
            per_commit = appended[many_ledger] / max(1, many_ledger.write_batches - batches_before)
        finally:
            raw.close()
            await single_ledger.close()
            await many_ledger.close()
            await single_proto.close()
            await many_proto.close()
    rate = alone["raw"]
    raw_p99_ms = percentile(raw.samples, 0.99) / 1e6
    # The best ratio a writer off the loop can reach here: a raw commit plus one empty round trip.
    ceiling = (1e6 / rate) / (1e6 / rate + hop_us)
    progress(f"sqlite raw commits: {rate:.0f}/s, p99 {raw_p99_ms:.2f} ms")
    progress(f"thread round trip p50: {hop_us:.0f} µs (off-loop ceiling of ledger_vs_raw: {ceiling:.2f})")
    progress(f"ledger appends, one at a time: {alone['ledger']:.0f}/s; prototype {alone['prototype']:.0f}/s")
    progress(
        f"{n} concurrent: ledger {many['ledger']:.0f}/s ({per_commit:.1f} appends per commit),"
        f" prototype {many['prototype']:.0f}/s"
    )
    return {
        "sqlite_raw_commit_per_s": round(rate, 1),
        "sqlite_raw_commit_p99_ms": round(raw_p99_ms, 3),
        "ledger_append_per_s": round(alone["ledger"], 1),
        "ledger_vs_raw": round(alone["ledger"] / rate, 3),
        "thread_hop_p50_us": round(hop_us, 1),
        "ledger_vs_raw_offloop_ceiling": round(ceiling, 3),
        "ledger_append_concurrent_per_s": round(many["ledger"], 1),
        "concurrent_vs_raw": round(many["ledger"] / many["raw"], 3),
        "concurrent_appends_per_commit": round(per_commit, 1),
        "prototype_vs_raw": round(alone["prototype"] / rate, 3),
        "prototype_concurrent_vs_raw": round(many["prototype"] / many["raw"], 3),
        "ledger_vs_prototype": round(alone["ledger"] / alone["prototype"], 3),
        "concurrent_vs_prototype": round(many["ledger"] / many["prototype"], 3),
    }
