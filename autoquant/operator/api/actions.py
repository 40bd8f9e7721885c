"""Routes that compute without acting: a strategy's signal now, the risk gate's verdict on a proposed
order, and backtest jobs (started by POST, read by GET)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import ValidationError

from autoquant.domain.bars import Bar
from autoquant.errors import ConfigError
from autoquant.operator import commands, manual
from autoquant.operator.api.guards import limit_writes, require_token
from autoquant.operator.api.models import (
    BacktestJob,
    BacktestRequest,
    SignalRequest,
    SignalResponse,
    SimulateRequest,
    SimulateResponse,
)
from autoquant.operator.api.state import ApiState
from autoquant.operator.backtest_jobs import Job
from autoquant.operator.signal import run_signal
from autoquant.operator.simulate import simulate
from autoquant.strategies import build_strategies

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)], tags=["compute"])


def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(_state)]


@router.post("/signal/run", response_model=SignalResponse)
async def signal_run(state: State, body: SignalRequest) -> SignalResponse:
    """Evaluate a configured strategy on the bars the ledger recorded; nothing is recorded or sent."""
    result = await run_signal(await state.reader(), state.config, body.strategy)
    return SignalResponse.model_validate(result)


@router.post("/orders/simulate", response_model=SimulateResponse)
async def orders_simulate(state: State, body: SimulateRequest) -> SimulateResponse:
    """Run the risk gate on a proposed order of any type: a verdict per check and the price basis the
    gate counts it at (its limit or stop price, a buy's trail over the last price, else the last
    price; a notional order's own dollars), no side effect. Its terms are checked as `orders/submit`
    checks them (422 naming the field)."""
    if body.strategy_id not in {s.id for s in state.config.strategies}:
        raise commands.CommandInvalid(f"{body.strategy_id!r} is not a configured strategy", "strategy_id")
    if body.symbol not in state.config.marketdata.symbols:
        raise commands.CommandInvalid(f"{body.symbol} is not in [marketdata] symbols", "symbol")
    order = manual.check_order_terms(
        strategy_id=body.strategy_id,
        symbol=body.symbol,
        side=body.side,
        terms=body.terms(),
        client_order_id="simulation",
        now_ns=time.time_ns(),
    )
    verdict = await simulate(await state.reader(), state.config, order)
    return SimulateResponse.model_validate(verdict)


def _job(job: Job) -> BacktestJob:
    return BacktestJob.model_validate(
        {"job_id": job.job_id, "state": job.state, "result": job.result, "error": job.error}
    )


@router.post("/backtest", response_model=BacktestJob, status_code=202, dependencies=[Depends(limit_writes)])
async def backtest_start(state: State, body: BacktestRequest) -> BacktestJob:
    """Start a backtest of a configured strategy (with `overrides`) on the given bars; returns the job id."""
    base = next((s for s in state.config.strategies if s.id == body.strategy), None)
    if base is None:
        raise commands.CommandInvalid(f"{body.strategy!r} is not a configured strategy", "strategy")
    try:
        settings = type(base).model_validate(base.model_dump() | {"params": base.params | body.overrides})
        bars = [Bar(source="api", **bar.model_dump()) for bar in body.bars]
    except ValidationError as error:
        first: dict[str, Any] = dict(error.errors()[0])
        where = ".".join(str(p) for p in first["loc"])
        raise commands.CommandInvalid(f"{where}: {first['msg']}", where) from None
    try:
        build_strategies([settings], state.config.source)  # parameters are checked as at start-up
    except ConfigError as error:
        raise commands.CommandInvalid(str(error), "overrides") from None
    traded = set(settings.traded)
    if any(bar.symbol not in traded for bar in bars):
        raise commands.CommandInvalid(f"bars: every bar must be of {', '.join(sorted(traded))}", "bars")
    return _job(state.jobs.start(settings, bars))


@router.get("/backtest/{job_id}", response_model=BacktestJob)
async def backtest_get(state: State, job_id: str) -> BacktestJob:
    """A backtest job's state, and its result once done."""
    job = state.jobs.get(job_id)
    if job is None:
        raise HTTPException(
            status_code=404, detail=f"no backtest job {job_id} (jobs live until the API restarts)"
        )
    return _job(job)
