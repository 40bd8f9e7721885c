"""What a strategy decides, and the order it wishes for: the intent, never the broker's state."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from autoquant.domain.values import (
    Identifier,
    NonNegative,
    OrderType,
    Price,
    Side,
    Symbol,
    TimeInForce,
    UtcDatetime,
    check_limit_price,
    check_order_terms,
)


class Action(StrEnum):
    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"


class OrderIntent(BaseModel):
    """A strategy's wish for one order, with the reason and the market-data time it used."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy_id: Identifier
    symbol: Symbol
    side: Side
    #: Zero exactly when ``notional`` (a dollar amount) stands in for it: the quantity is known at fills.
    qty: NonNegative = Decimal(0)
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.DAY
    limit_price: Price | None = None
    stop_price: Price | None = None
    notional: Price | None = None
    #: A trailing stop's distance from its high-water mark: exactly one of the two.
    trail_price: Price | None = None
    trail_percent: Price | None = None
    #: Eligible outside the regular session: limit orders, day or gtc.
    extended_hours: bool = False
    reason: str
    decision_id: str
    data_time: UtcDatetime

    @model_validator(mode="after")
    def _limit_price(self) -> OrderIntent:
        check_limit_price(self.order_type, self.limit_price, self.stop_price)
        check_order_terms(
            self.order_type,
            self.time_in_force,
            self.qty,
            self.notional,
            self.trail_price,
            self.trail_percent,
            self.extended_hours,
        )
        return self


class Decision(BaseModel):
    """One decision of one strategy on one bar, holds included, recorded before anything acts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision_id: str
    strategy_id: Identifier
    symbol: Symbol
    action: Action
    reason: str
    data_time: UtcDatetime
    #: What the strategy saw (prices, indicator values), for the trace.
    inputs: dict[str, Any] = {}
    intent: OrderIntent | None = None

    @model_validator(mode="after")
    def _intent_matches_action(self) -> Decision:
        if (self.action is Action.HOLD) != (self.intent is None):
            raise ValueError("intent is required for buy and sell and forbidden for hold")
        if self.intent is not None and self.intent.side.value != self.action.value:
            raise ValueError("intent side must match the action")
        return self
