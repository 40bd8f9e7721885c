"""Backtest jobs for ``POST /api/v1/backtest``: a job id at once, the run on a worker thread of the API
process (never on the trading loop, which lives in another process), state and result by id.

A job is ``autoquant backtest`` on the posted bars: the same strategy worker, risk gate, ledger,
execution worker and paper exchange under a virtual clock (``research.results.backtest_of_bars``), in
a scratch folder removed afterwards; its result is the report ``autoquant backtest --json`` prints.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoquant.domain.bars import Bar
from autoquant.research.results import backtest_of_bars
from autoquant.runtime.config import Config
from autoquant.strategies.settings import StrategySettings

BacktestRunner = Callable[[Config, StrategySettings, list[Bar]], dict[str, Any]]
#: Jobs kept for GET (the oldest finished ones are forgotten beyond this).
MAX_JOBS = 100


def whole_path(config: Config, settings: StrategySettings, bars: list[Bar]) -> dict[str, Any]:
    """A backtest of the one strategy ``settings`` over ``bars`` through the production path."""
    workdir = Path(tempfile.mkdtemp(prefix="autoquant-api-backtest-"))
    try:
        return backtest_of_bars(config.model_copy(update={"strategies": [settings]}), bars, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Job:
    job_id: str
    state: str = "queued"  # queued | running | done | failed
    result: dict[str, Any] | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class BacktestJobs:
    def __init__(self, config: Config, runner: BacktestRunner = whole_path, concurrency: int = 1) -> None:
        self.config = config
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
                job.result = await asyncio.to_thread(self.runner, self.config, settings, bars)
                job.state = "done"
            except Exception as error:  # a bad job fails alone; its message is its result
                job.state, job.error = "failed", f"{type(error).__name__}: {error}"

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    async def close(self) -> None:
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
