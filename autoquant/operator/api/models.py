"""The API's request and response models. Every response carries ``schema_version``; Decimals travel
as strings (exact), times as ISO-8601 UTC strings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from autoquant.operator.manual import OrderTerms

SCHEMA_VERSION = 1


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorBody(BaseModel):
    """Every error: what is wrong and what to do; ``field`` names the input at fault, if one is."""

    schema_version: int = SCHEMA_VERSION
    error: str
    field: str | None = None


class Health(Response):
    ok: bool
    ledger: str


# -- rows ----------------------------------------------------------------------------------------


class OrderRow(BaseModel):
    client_order_id: str
    broker_order_id: str | None
    decision_id: str | None
    strategy_id: str
    symbol: str
    side: str
    order_type: str
    limit_price: str | None
    stop_price: str | None
    #: A notional order's dollars (its ``qty`` is null until it has ended, then the quantity filled).
    notional: str | None
    qty: str | None
    filled_qty: str
    avg_fill_price: str | None
    status: str
    reason: str | None
    created: str | None
    updated: str | None


class FillRow(BaseModel):
    execution_id: str
    client_order_id: str
    broker_order_id: str | None
    strategy_id: str
    symbol: str
    side: str
    qty: str
    price: str
    fee: str
    broker_time: str | None
    local_time: str | None


class PositionRow(BaseModel):
    strategy_id: str
    symbol: str
    qty: str
    avg_price: str
    realized_pnl: str
    unrealized_pnl: str | None
    mark_price: str | None
    mark_price_source: str | None
    fees: str


class IncidentRow(BaseModel):
    incident_id: str
    state: Literal["open", "resolved"]
    kind: str
    subject: str
    scope: str
    message: str
    action: str
    opened: str | None
    resolved: str | None
    resolved_by: str | None
    resolution_note: str | None
    details: dict[str, Any]


class DecisionRow(BaseModel):
    seq: int
    decision_id: str
    strategy_id: str
    symbol: str
    action: str
    reason: str
    data_time: str | None
    time: str | None


class BarRow(BaseModel):
    close_time: str
    close: str
    #: Where the bar came from (the decision that saw it, and its strategy).
    seen_by_decision: str
    strategy_id: str


# -- responses -----------------------------------------------------------------------------------


class Orders(Response):
    orders: list[OrderRow]


class Fills(Response):
    fills: list[FillRow]


class Positions(Response):
    positions: list[PositionRow]


class Incidents(Response):
    incidents: list[IncidentRow]


class Decisions(Response):
    decisions: list[DecisionRow]
    #: Count per (strategy, action, reason) over the decisions returned.
    by_reason: list[dict[str, Any]]


class Bars(Response):
    symbol: str
    bars: list[BarRow]


class Status(Response):
    """``autoquant status --json``, field for field."""

    model_config = ConfigDict(extra="allow")

    daemon: dict[str, Any]
    trading_state: str
    trading_state_reason: str | None
    paused: list[dict[str, Any]]
    open_incidents: list[dict[str, Any]]
    open_orders: int


class Portfolio(Response):
    cash: str | None
    equity: str | None
    cash_source: str
    exposure: str
    exposure_by_symbol: dict[str, str]
    realized_pnl: str
    unrealized_pnl: str
    fees: str
    pnl_today: dict[str, Any]


class Trace(Response):
    id: str
    entries: list[dict[str, Any]]


class LedgerEventOut(BaseModel):
    """One event of the live stream: ``type`` and its global ledger sequence."""

    type: str
    seq: int
    time: str | None
    data: dict[str, Any]


# -- writes --------------------------------------------------------------------------------------


class ControlRequest(Request):
    reason: str | None = Field(default=None, max_length=500, description="why (recorded in the ledger)")
    strategy: str | None = Field(default=None, max_length=100, description="a strategy id; default account")
    force: bool = Field(default=False, description="resume even while incidents are open (they are listed)")


class ReasonRequest(Request):
    reason: str = Field(max_length=500, description="why (recorded in the ledger)")


class HaltRequest(Request):
    reason: str = Field(max_length=500, description="why (recorded in the ledger)")
    flatten: bool = Field(
        default=False, description="also cancel every open order and close every position at the broker"
    )


class ReplaceRequest(Request):
    client_order_id: str = Field(max_length=48, description="the open order to replace")
    qty: Decimal | None = Field(default=None, gt=0, description="the new quantity")
    limit_price: Decimal | None = Field(
        default=None, gt=0, description="the new limit price (limit and stop-limit orders)"
    )
    stop_price: Decimal | None = Field(
        default=None, gt=0, description="the new stop price (stop and stop-limit orders)"
    )
    trail: Decimal | None = Field(
        default=None,
        gt=0,
        description="a trailing stop's new trail, in its own unit: dollars (trail_price) or percent",
    )
    reason: str = Field(max_length=500, description="why (recorded in the ledger)")


class CancelRequest(Request):
    client_order_id: str | None = Field(default=None, max_length=48)
    all: bool = False
    reason: str = Field(max_length=500)


class ResolveRequest(Request):
    incident_id: str = Field(max_length=100)
    note: str = Field(max_length=1000)


class CommandResult(Response):
    message: str
    changed: bool
    trading_state: str | None = None
    paused: list[str] = Field(default_factory=list)


# -- actions without side effects, and backtest jobs ---------------------------------------------


OrderTypeName = Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
TimeInForceName = Literal["day", "gtc", "ioc", "fok", "opg", "cls"]


class OrderTermsIn(Request):
    """An order's terms, every type a strategy's intent takes. The domain's rules check them, values and
    combination (422 naming the field, in the words `autoquant order` uses): `qty` or `notional`, each
    positive; a limit or stop price for the types that need one; exactly one of `trail_price` and
    `trail_percent` for a trailing stop."""

    symbol: str = Field(max_length=20)
    side: Literal["buy", "sell"]
    qty: Decimal | None = Field(default=None, description="shares; leave out for a notional order")
    notional: Decimal | None = Field(
        default=None, description="dollars instead of a qty (market orders, time_in_force day)"
    )
    order_type: OrderTypeName = "market"
    limit_price: Decimal | None = Field(default=None, description="limit and stop_limit orders")
    stop_price: Decimal | None = Field(default=None, description="stop and stop_limit orders")
    trail_price: Decimal | None = Field(default=None, description="trailing_stop: $ off the mark")
    trail_percent: Decimal | None = Field(default=None, description="trailing_stop: % off the mark")
    time_in_force: TimeInForceName = "day"
    extended_hours: bool = Field(default=False, description="limit orders, day or gtc: outside the session")

    def terms(self) -> OrderTerms:
        return OrderTerms(
            qty=self.qty,
            order_type=self.order_type,
            time_in_force=self.time_in_force,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
            notional=self.notional,
            trail_price=self.trail_price,
            trail_percent=self.trail_percent,
            extended_hours=self.extended_hours,
        )


class SimulateRequest(OrderTermsIn):
    strategy_id: str = Field(max_length=100)


class CheckResult(BaseModel):
    name: str
    passed: bool
    detail: str


class NotionalBasis(BaseModel):
    """What the risk gate counts the order at: ``price`` from ``source`` (its limit or stop price, the
    last price plus a buy's trail, or the last price), and the dollars that makes."""

    price: str | None
    source: str
    qty: str | None
    notional: str | None


class SimulateResponse(Response):
    allowed: bool
    reason: str
    resized_qty: str | None
    checks: list[CheckResult]
    basis: NotionalBasis
    prices: dict[str, str]
    data_age_s: dict[str, float]


class SignalRequest(Request):
    strategy: str = Field(max_length=100, description="a configured strategy id")


class SignalDecision(BaseModel):
    symbol: str
    action: str
    reason: str
    inputs: dict[str, Any]
    intent: dict[str, Any] | None


class SignalResponse(Response):
    strategy_id: str
    symbols: list[str]
    #: One per symbol the strategy decided on (a multi-symbol strategy may decide several).
    decisions: list[SignalDecision]
    bars_used: int
    bars_source: str
    data_age_s: float


class BarIn(Request):
    symbol: str = Field(max_length=20)
    open_time: datetime
    close_time: datetime
    open: Decimal = Field(gt=0)
    high: Decimal = Field(gt=0)
    low: Decimal = Field(gt=0)
    close: Decimal = Field(gt=0)
    volume: Decimal = Field(ge=0)


class BacktestRequest(Request):
    strategy: str = Field(max_length=100, description="a configured strategy id")
    overrides: dict[str, Any] = Field(default_factory=dict, description="settings to change, e.g. fast")
    bars: list[BarIn] = Field(min_length=1, max_length=100_000)


class BacktestJob(Response):
    job_id: str
    state: Literal["queued", "running", "done", "failed"]
    result: dict[str, Any] | None = None
    error: str | None = None


class SubmitRequest(OrderTermsIn):
    client_order_id: str = Field(max_length=48, description="your idempotency key: the same id is one order")
    strategy_id: str | None = Field(default=None, max_length=100, description="default: operator")
    reason: str = Field(max_length=500)
