"""The write routes: the operator's acts through ``autoquant.operator.commands``, the same operations the
CLI runs (same validation, same ledger events, same messages). Each opens the ledger for one write,
as the CLI does; the running daemon notices it within a second."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from autoquant.domain.controls import ControlKind
from autoquant.ledger import Ledger
from autoquant.operator import commands, manual
from autoquant.operator.api.guards import limit_writes, require_token
from autoquant.operator.api.models import (
    CancelRequest,
    CommandResult,
    ControlRequest,
    HaltRequest,
    ReasonRequest,
    ReplaceRequest,
    ResolveRequest,
    SubmitRequest,
)
from autoquant.operator.api.state import ApiState

router = APIRouter(
    prefix="/api/v1", dependencies=[Depends(require_token), Depends(limit_writes)], tags=["write"]
)


def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def _actor(request: Request) -> str:
    return f"api@{request.client.host if request.client else 'unknown'}"


State = Annotated[ApiState, Depends(_state)]


async def _write(state: ApiState, act: Callable[[Ledger], Awaitable[commands.Outcome]]) -> CommandResult:
    ledger = await Ledger.open(state.ledger_path)
    try:
        outcome = await act(ledger)
    finally:
        await ledger.close()
    return CommandResult(
        message=outcome.message,
        changed=outcome.changed,
        trading_state=outcome.trading_state,
        paused=outcome.paused,
    )


async def _control(
    kind: ControlKind, state: ApiState, request: Request, body: ControlRequest
) -> CommandResult:
    control = commands.check_control(
        kind,
        scope=body.strategy,
        reason=body.reason,
        actor=_actor(request),
        now_ns=time.time_ns(),
        strategy_ids=[s.id for s in state.config.strategies],
    )
    return await _write(state, lambda ledger: commands.apply_control(ledger, control, force=body.force))


@router.post("/pause", response_model=CommandResult)
async def pause(state: State, request: Request, body: ControlRequest) -> CommandResult:
    """Stop new orders (the account, or one strategy); `reason` is required."""
    return await _control(ControlKind.PAUSE, state, request, body)


@router.post("/resume", response_model=CommandResult)
async def resume(state: State, request: Request, body: ControlRequest) -> CommandResult:
    """Lift a pause or halt (an operator's act; nothing resumes by itself)."""
    return await _control(ControlKind.RESUME, state, request, body)


@router.post("/halt", response_model=CommandResult)
async def halt(state: State, request: Request, body: HaltRequest) -> CommandResult:
    """Kill switch: refuse all new orders until resume. With `flatten`, also cancel every open order and
    close every position at the broker (the running daemon records each closing order and fill)."""
    result = await _control(ControlKind.HALT, state, request, ControlRequest(reason=body.reason))
    if not body.flatten:
        return result
    actor = _actor(request)
    flattened = await _write(
        state, lambda ledger: commands.flatten(ledger, body.reason, actor, time.time_ns())
    )
    return result.model_copy(update={"message": f"{result.message}; {flattened.message}"})


@router.post("/replace", response_model=CommandResult, status_code=202)
async def replace(state: State, request: Request, body: ReplaceRequest) -> CommandResult:
    """Replace an open order by new terms (`qty`, `limit_price`, `stop_price`, a trailing stop's `trail`:
    at least one): the running daemon sends it to the broker once, as a new order on the same decision;
    the old one ends replaced."""
    terms = commands.check_replace(
        body.client_order_id,
        qty=body.qty,
        limit_price=body.limit_price,
        stop_price=body.stop_price,
        reason=body.reason,
        trail=body.trail,
    )
    actor = _actor(request)
    return await _write(state, lambda ledger: commands.replace(ledger, terms, actor, time.time_ns()))


@router.post("/reduce", response_model=CommandResult)
async def reduce(state: State, request: Request, body: ReasonRequest) -> CommandResult:
    """Accept only orders that shrink exposure until resume."""
    return await _control(ControlKind.REDUCE, state, request, ControlRequest(reason=body.reason))


@router.post("/cancel", response_model=CommandResult)
async def cancel(state: State, request: Request, body: CancelRequest) -> CommandResult:
    """Cancel one open order (`client_order_id`) or every open order (`all`); works while HALTED."""
    target, reason = commands.check_cancel(body.client_order_id, body.all, body.reason)
    actor = _actor(request)
    return await _write(state, lambda ledger: commands.cancel(ledger, target, reason, actor, time.time_ns()))


@router.post("/resolve", response_model=CommandResult)
async def resolve(state: State, request: Request, body: ResolveRequest) -> CommandResult:
    """Record that an incident was dealt with (409 if it already was)."""
    incident_id, note = commands.check_resolve(body.incident_id, body.note)
    actor = _actor(request)
    result = await _write(
        state, lambda ledger: commands.resolve(ledger, incident_id, note, actor, time.time_ns())
    )
    if not result.changed:
        raise commands.CommandConflict(result.message, field="incident_id")
    return result


@router.post("/orders/submit", response_model=CommandResult, status_code=202)
async def orders_submit(state: State, request: Request, body: SubmitRequest) -> CommandResult:
    """A manual order of any type a strategy can place (market, limit, stop, stop_limit, trailing_stop;
    `qty` or `notional`; opg/cls; `extended_hours`) through the daemon's reserve → risk check →
    execution path. `client_order_id` is the idempotency key: the same request twice makes one order
    (409 if the id names another order).
    `trading_state` in the answer holds the order's state (`requested` until the daemon reserves it)."""
    order = manual.check_manual_order(
        client_order_id=body.client_order_id,
        strategy_id=body.strategy_id,
        symbol=body.symbol,
        side=body.side,
        terms=body.terms(),
        reason=body.reason,
        actor=_actor(request),
        now_ns=time.time_ns(),
        strategy_ids=[s.id for s in state.config.strategies],
        symbols=state.config.marketdata.symbols,
    )
    return await _write(state, lambda ledger: manual.submit_manual_order(ledger, order))
