"""What a strategy decides, and the order it wishes for: the intent, never the broker's state."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from autoquant.domain.order_terms import OrderTerms
from autoquant.domain.values import Identifier, Symbol, UtcDatetime


class Action(StrEnum):
    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"


class OrderIntent(OrderTerms):
    """A strategy's wish for one order, with the reason and the market-data time it used."""

    reason: str
    decision_id: str
    data_time: UtcDatetime


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
