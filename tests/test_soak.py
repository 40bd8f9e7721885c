"""`make soak`: the in-process daemon soak samples memory, loop lag and the ledger; the 10 % memory rule."""

from __future__ import annotations

import asyncio
from pathlib import Path

from autoquant.bench.soak import Sample, judge, soak


def sample(at: float, rss: float) -> Sample:
    return Sample(at_s=at, rss_mb=rss, loop_lag_p99_ms=1.0, loop_lag_max_ms=2.0, ledger_mb=1.0, fills=int(at))


def test_a_short_soak_samples_a_trading_daemon(tmp_path: Path) -> None:
    """Three seconds of soak: a sample a second, fills growing, the ledger measured, the daemon drained."""
    samples = asyncio.run(soak(tmp_path, 3.0, 1.0))
    assert len(samples) == 3
    assert samples[-1].fills > samples[0].fills >= 0 and samples[-1].fills > 0
    assert all(s.rss_mb > 0 and s.ledger_mb > 0 and s.loop_lag_max_ms >= s.loop_lag_p99_ms for s in samples)
    report = judge(samples)
    assert report["soak_fills"] == samples[-1].fills and len(report["samples"]) == 3


def test_memory_rule_compares_with_the_end_of_warm_up() -> None:
    """Warm-up is the first fifth; growth past it beyond 10 % fails, within it passes."""
    steady = [sample(i, 100.0 if i >= 1 else 50.0) for i in range(10)]
    assert judge(steady)["memory_ok"] is True and judge(steady)["soak_rss_mb_after_warmup"] == 100.0
    leaking = [*steady[:-1], sample(9, 111.0)]
    assert judge(leaking)["memory_ok"] is False
