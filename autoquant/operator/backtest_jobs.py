"""Backtest jobs for ``POST /api/v1/backtest``: a job id at once, the run on a worker thread of the API
process (never on the trading loop, which lives in another process), state and result by id.

What a job runs is a small interface, ``BacktestRunner`` (request -> result dict). Until ``autoquant
backtest`` (issue 11: the same workers, risk gate and paper exchange under a virtual clock) lands, the
runner here is ``decisions_only``: it walks the configured strategy over the given bars, exactly as the
strategy worker would call ``decide``, and reports its decisions — no risk gate, no fills. The result
says which runner produced it.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from autoquant.domain.bars import Bar
from autoquant.domain.strategy import StrategyState
from autoquant.strategies import build_strategy
from autoquant.strategies.settings import StrategySettings

BacktestRunner = Callable[[StrategySettings, list[Bar]], dict[str, Any]]
#: Jobs kept for GET (the oldest finished ones are forgotten beyond this).
MAX_JOBS = 100


def decisions_only(settings: StrategySettings, bars: list[Bar]) -> dict[str, Any]:
    """The strategy's decisions on ``bars`` (flat position, no orders open): what it would have said."""
    strategy = build_strategy(settings)
    window = max(strategy.warmup, 1)
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    decisions = []
    for i, bar in enumerate(bars):
        state = StrategyState(
            strategy_id=settings.id,
            symbol=settings.symbol,
            bars=tuple(bars[max(0, i + 1 - window) : i + 1]),
            position_qty=Decimal(0),
            data_fresh=True,
            data_age_ns=0,
            decision_id=f"bt-{i}",
        )
        decision = strategy.decide(state)
        counts[(decision.action.value, decision.reason)] += 1
        if decision.action.value != "hold":
            decisions.append(
                {
                    "close_time": bar.close_time.isoformat(),
                    "action": decision.action.value,
                    "reason": decision.reason,
                }
            )
    return {
        "runner": "decisions_only (strategy over the bars; no risk gate, no fills)",
        "bars": len(bars),
        "by_reason": [{"action": a, "reason": r, "count": n} for (a, r), n in sorted(counts.items())],
        "orders_wanted": decisions,
    }


@dataclass
class Job:
    job_id: str
    state: str = "queued"  # queued | running | done | failed
    result: dict[str, Any] | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class BacktestJobs:
    def __init__(self, runner: BacktestRunner = decisions_only, concurrency: int = 1) -> None:
        self.runner = runner
        self.jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._slots = asyncio.Semaphore(concurrency)

    def start(self, settings: StrategySettings, bars: list[Bar]) -> Job:
        job = Job(job_id="bt-" + secrets.token_hex(8))
        self.jobs[job.job_id] = job
        while len(self.jobs) > MAX_JOBS:
            oldest = next(iter(self.jobs.values()))
            if oldest.state in ("queued", "running"):
                break
            self.jobs.popitem(last=False)
        job.task = asyncio.get_running_loop().create_task(self._run(job, settings, bars))
        return job

    async def _run(self, job: Job, settings: StrategySettings, bars: list[Bar]) -> None:
        async with self._slots:
            job.state = "running"
            try:
                job.result = await asyncio.to_thread(self.runner, settings, bars)
                job.state = "done"
            except Exception as error:  # a bad job fails alone; its message is its result
                job.state, job.error = "failed", f"{type(error).__name__}: {error}"

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    async def close(self) -> None:
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
