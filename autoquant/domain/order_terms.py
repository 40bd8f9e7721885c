"""An order's terms: whose it is, in what, which way and on what terms, checked once.

A strategy's ``OrderIntent`` and the ledger's ``Order`` both carry these twelve fields and the same
venue-independent rules (``values.check_limit_price``, ``values.check_order_terms``); each is an
``OrderTerms`` with what is its own added (the intent its reason and data time, the order its ids and
its state). Two requests equal in ``ORDER_TERMS`` ask for the same order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, model_validator

from autoquant.domain.values import (
    Identifier,
    NonNegative,
    OrderType,
    Price,
    Side,
    Symbol,
    TimeInForce,
    check_limit_price,
    check_order_terms,
)


class OrderTerms(BaseModel):
    """The terms of one order, valid together (a limit order has its limit price, a notional order no
    quantity, a trailing stop exactly one trail, ...)."""

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

    @model_validator(mode="after")
    def _terms_agree(self) -> Self:
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


#: The fields that say which order it is: whose, in what, which way, and on what terms.
ORDER_TERMS: Final = tuple(OrderTerms.model_fields)
