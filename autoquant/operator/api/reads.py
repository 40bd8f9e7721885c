"""The read routes under ``/api/v1``: the CLI's inspection views as typed JSON, read-only, answered
whether the daemon is running or not."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from autoquant.domain.values import to_ns
from autoquant.operator import inspection
from autoquant.operator.api.guards import require_token
from autoquant.operator.api.models import (
    BarRow,
    Bars,
    DecisionRow,
    Decisions,
    FillRow,
    Fills,
    IncidentRow,
    Incidents,
    OrderRow,
    Orders,
    Portfolio,
    PositionRow,
    Positions,
    Status,
    Trace,
)
from autoquant.operator.api.state import ApiState

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)], tags=["read"])


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(api_state)]


def _since(text: str | None) -> int | None:
    if text is None:
        return None
    from autoquant.operator.logview import parse_since

    try:
        return to_ns(parse_since(text))
    except ValueError as error:
        raise HTTPException(status_code=422, detail=f"since: {error}") from None


@router.get("/status", response_model=Status)
async def status(state: State) -> Status:
    """Daemon liveness, trading state and why, pauses, reconciliation, incidents, P&L (`autoquant status`)."""
    reader = await state.reader()
    return Status.model_validate(await inspection.status(reader, state.status_file))


@router.get("/orders", response_model=Orders)
async def orders(
    state: State,
    open: bool = False,
    symbol: str | None = None,
    since: Annotated[str | None, Query(description="10m, 2h, 1d or an ISO time")] = None,
) -> Orders:
    """Orders with their current state; the CLI's filters (`--open`, `--symbol`, `--since`)."""
    rows = await inspection.orders(
        await state.reader(), open_only=open, symbol=symbol, since_ns=_since(since)
    )
    return Orders(orders=[OrderRow.model_validate(row) for row in rows])


@router.get("/fills", response_model=Fills)
async def fills(state: State, symbol: str | None = None, since: str | None = None) -> Fills:
    """Executions, each counted once."""
    rows = await inspection.fills(await state.reader(), symbol=symbol, since_ns=_since(since))
    return Fills(fills=[FillRow.model_validate(row) for row in rows])


@router.get("/positions", response_model=Positions)
async def positions(state: State) -> Positions:
    """Positions per strategy and symbol, marked at the last fill."""
    rows = await inspection.positions(await state.reader())
    return Positions(positions=[PositionRow.model_validate(row) for row in rows])


@router.get("/portfolio", response_model=Portfolio)
async def portfolio(state: State) -> Portfolio:
    """Cash and equity (the broker's, at the last account poll), exposure at the marks, realized and
    unrealized P&L, fees."""
    reader = await state.reader()
    rows = await inspection.positions(reader)
    exposure: dict[str, Decimal] = {}
    realized = unrealized = fees = Decimal(0)
    for row in rows:
        realized += Decimal(row["realized_pnl"])
        fees += Decimal(row["fees"])
        if row["unrealized_pnl"] is not None:
            unrealized += Decimal(row["unrealized_pnl"])
        if row["mark_price"] is not None:
            exposure[row["symbol"]] = exposure.get(row["symbol"], Decimal(0)) + Decimal(row["qty"]) * Decimal(
                row["mark_price"]
            )
    account = await reader.latest_account()
    return Portfolio(
        cash=None if account is None else inspection.plain(account[0].cash),
        equity=None if account is None else inspection.plain(account[0].equity),
        cash_source="no account snapshot yet"
        if account is None
        else f"broker account at {inspection.iso(account[1])}",
        exposure=inspection.plain(sum((abs(v) for v in exposure.values()), Decimal(0))),
        exposure_by_symbol={k: inspection.plain(v) for k, v in sorted(exposure.items())},
        realized_pnl=inspection.plain(realized),
        unrealized_pnl=inspection.plain(unrealized),
        fees=inspection.plain(fees),
        pnl_today=await inspection.pnl_today(reader, time.time_ns()),
    )


@router.get("/decisions", response_model=Decisions)
async def decisions(
    state: State,
    strategy: str | None = None,
    symbol: str | None = None,
    action: Annotated[str | None, Query(pattern="^(buy|sell|hold)$")] = None,
    reason: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Decisions:
    """The newest decisions (filter by strategy, symbol, action, reason) and their counts by reason."""
    records = await (await state.reader()).decisions(
        strategy_id=strategy, symbol=symbol, action=action, reason=reason, limit=limit
    )
    counts = Counter((r.strategy_id, r.action, r.reason) for r in records)
    return Decisions(
        decisions=[
            DecisionRow(
                seq=r.seq,
                decision_id=r.decision_id,
                strategy_id=r.strategy_id,
                symbol=r.symbol,
                action=r.action,
                reason=r.reason,
                data_time=inspection.iso(r.data_time_ns),
                time=inspection.iso(r.local_ts_ns),
            )
            for r in records
        ],
        by_reason=[
            {"strategy_id": s, "action": a, "reason": why, "count": n}
            for (s, a, why), n in sorted(counts.items())
        ],
    )


@router.get("/trace/{identifier}", response_model=Trace)
async def trace(state: State, identifier: str) -> Trace:
    """Everything that bears a decision, client order or broker order id, in ledger order."""
    from autoquant.operator.trace import trace as build

    entries = await build(await state.reader(), identifier, state.config.logging.path)
    if entries is None:
        raise HTTPException(
            status_code=404,
            detail=f"nothing in the ledger bears the id {identifier!r} "
            "(give a decision id, client order id or broker order id; /api/v1/orders lists them)",
        )
    return Trace(id=identifier, entries=entries)


@router.get("/incidents", response_model=Incidents)
async def incidents(state: State, open: bool = False) -> Incidents:
    """What the daemon could not explain, and what to do."""
    rows = await inspection.incidents(await state.reader(), open_only=open)
    return Incidents(incidents=[IncidentRow.model_validate(row) for row in rows])


@router.get("/bars/{symbol}", response_model=Bars)
async def bars(state: State, symbol: str, limit: Annotated[int, Query(ge=1, le=5000)] = 200) -> Bars:
    """The recent bars the daemon decided on, as the ledger recorded them: each bar's close time and close,
    with the decision that saw it (provenance). The ledger keeps the close a decision used, not the
    whole OHLCV bar."""
    if symbol not in state.config.marketdata.symbols:
        raise HTTPException(
            status_code=404,
            detail=f"{symbol} is not in [marketdata] symbols ({', '.join(state.config.marketdata.symbols)})",
        )
    records = await (await state.reader()).decisions(symbol=symbol, limit=limit)
    seen: dict[int, BarRow] = {}
    for r in records:
        if r.close is not None and r.data_time_ns not in seen:
            seen[r.data_time_ns] = BarRow(
                close_time=inspection.iso(r.data_time_ns) or "",
                close=r.close,
                seen_by_decision=r.decision_id,
                strategy_id=r.strategy_id,
            )
    return Bars(symbol=symbol, bars=[seen[k] for k in sorted(seen)])
