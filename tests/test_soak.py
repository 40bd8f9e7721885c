"""`make soak`: the in-process daemon soak samples memory, loop lag and the ledger; the 10 % memory rule."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from autoquant.bench.native_memory import native_memory, open_databases
from autoquant.bench.soak import Sample, judge, soak


def sample(at: float, rss: float, sqlite: float | None = None, connections: int = 2) -> Sample:
    return Sample(
        at_s=at,
        rss_mb=rss,
        loop_lag_p99_ms=1.0,
        loop_lag_max_ms=2.0,
        ledger_mb=1.0,
        fills=int(at),
        sqlite_mb=sqlite,
        databases={"ledger.db": connections},
    )


def test_a_short_soak_samples_a_trading_daemon(tmp_path: Path) -> None:
    """Three seconds of soak: a sample a second, fills growing, the ledger measured, the daemon drained."""
    with (tmp_path / "stalls.txt").open("w") as stalls:
        samples = asyncio.run(soak(tmp_path, 3.0, 1.0, stalls))
    assert len(samples) == 3
    assert samples[-1].fills > samples[0].fills >= 0 and samples[-1].fills > 0
    assert all(s.rss_mb > 0 and s.ledger_mb > 0 and s.loop_lag_max_ms >= s.loop_lag_p99_ms for s in samples)
    assert all(s.databases.get("ledger.db", 0) >= 1 and s.sqlite_mb is not None for s in samples)
    report = judge(samples)
    assert report["soak_fills"] == samples[-1].fills and len(report["samples"]) == 3


def test_memory_rule_compares_with_the_end_of_warm_up() -> None:
    """Warm-up is the first fifth; growth past it beyond 10 % fails, within it passes."""
    steady = [sample(i, 100.0 if i >= 1 else 50.0) for i in range(10)]
    assert judge(steady)["memory_ok"] is True and judge(steady)["soak_rss_mb_after_warmup"] == 100.0
    leaking = [*steady[:-1], sample(9, 111.0)]
    assert judge(leaking)["memory_ok"] is False


def test_sqlite_caches_filling_under_their_bound_are_not_a_leak() -> None:
    """SQLite's memory growing within connections x 3 MiB passes; the same growth outside SQLite fails."""
    filling = [sample(i, 100.0 + i, sqlite=10.0 + i) for i in range(10)]  # 2 connections: bound ~5.9 MB
    assert judge(filling)["memory_ok"] is False  # 19 MB of SQLite is over two connections' bound
    filling = [sample(i, 100.0 + i / 2, sqlite=1.0 + i / 2, connections=4) for i in range(10)]
    report = judge(filling)
    assert report["soak_sqlite_mb_max"] == 5.5 and report["soak_rss_growth_outside_sqlite"] == 0.0
    assert report["memory_ok"] is True and report["soak_rss_growth_after_warmup"] > 0
    leaking = [sample(i, 100.0 + 3 * i, sqlite=1.0, connections=4) for i in range(10)]
    assert judge(leaking)["memory_ok"] is False


def test_native_memory_sees_sqlite_allocations_and_connections(tmp_path: Path) -> None:
    """Opening a connection and filling its cache shows in SQLite's counter and in the open databases."""
    before = native_memory()
    conn = sqlite3.connect(tmp_path / "probe.db")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.executemany("INSERT INTO t VALUES (?)", [(b"x" * 1000,)] * 1000)
    after = native_memory()
    assert before.sqlite_mb is not None and after.sqlite_mb is not None
    assert after.sqlite_mb > before.sqlite_mb + 0.5
    assert open_databases().get("probe.db") == 1
    conn.close()
    assert "probe.db" not in open_databases()
