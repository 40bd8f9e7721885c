"""What the broker says: order states, updates, positions and the account, in the domain's terms.

These are reports, not wishes: ``BrokerOrderState`` is what the broker holds for an order, which the
ledger's ``Order`` converges to and the strategy's ``OrderIntent`` never stands in for.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, model_validator

from autoquant.domain.fills import Fill
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.domain.values import (
    Money,
    NonNegative,
    OrderType,
    Price,
    Quantity,
    Side,
    Symbol,
    TimeInForce,
    check_limit_price,
)


class OrderRequest(BaseModel):
    """What is sent to the broker: a reserved order, with the id it was reserved under."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_order_id: str
    symbol: Symbol
    side: Side
    #: Exactly one of ``qty`` and ``notional`` (a dollar amount: market orders only, at Alpaca).
    qty: Quantity | None = None
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.DAY
    limit_price: Price | None = None
    stop_price: Price | None = None
    notional: Price | None = None
    #: A trailing stop's distance from its high-water mark: exactly one of the two.
    trail_price: Price | None = None
    trail_percent: Price | None = None
    #: Eligible outside the regular session (Alpaca: limit orders, day or gtc, only).
    extended_hours: bool = False

    @model_validator(mode="after")
    def _limit_price(self) -> OrderRequest:
        check_limit_price(self.order_type, self.limit_price, self.stop_price)
        if (self.qty is None) == (self.notional is None):
            raise ValueError("exactly one of qty and notional is required")
        trails = (self.trail_price is not None) + (self.trail_percent is not None)
        if self.order_type is OrderType.TRAILING_STOP and trails != 1:
            raise ValueError("a trailing_stop order needs exactly one of trail_price and trail_percent")
        if self.order_type is not OrderType.TRAILING_STOP and trails:
            raise ValueError("trail_price and trail_percent are only for trailing_stop orders")
        # Alpaca takes up to 128; the ids the daemon makes are shorter (domain.ids, at most 48).
        if len(self.client_order_id) > 128:
            raise ValueError("client_order_id must be at most 128 characters")
        return self


class BrokerOrderState(BaseModel):
    """One order as the broker holds it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    broker_order_id: str
    client_order_id: str
    symbol: Symbol
    side: Side
    #: Zero only for a notional order not filled yet: its quantity is known when it fills.
    qty: NonNegative
    order_type: OrderType
    time_in_force: TimeInForce
    limit_price: Price | None = None
    #: For a trailing stop: where its stop stands now (it moves with ``hwm``).
    stop_price: Price | None = None
    notional: Price | None = None
    trail_price: Price | None = None
    trail_percent: Price | None = None
    #: A trailing stop's high-water mark: the best price since acceptance (a sell's highest, a buy's lowest).
    hwm: Price | None = None
    extended_hours: bool = False
    status: OrderStatus
    filled_qty: NonNegative = Decimal(0)
    filled_avg_price: Price | None = None
    created_ns: int
    updated_ns: int
    #: The broker's raw status word, kept for the trace when it was mapped.
    raw_status: str | None = None
    #: The broker order id of the order this one replaced (Alpaca's ``replaces``), if any.
    replaces: str | None = None
    #: The broker order id of the order that replaced this one (Alpaca's ``replaced_by``), if any.
    replaced_by: str | None = None


class FlattenResult(BaseModel):
    """What closing every position did: the closing orders the broker placed, and the symbols it
    could not close (with the broker's reason)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    orders: tuple[BrokerOrderState, ...] = ()
    failed: dict[str, str] = {}


class OrderUpdate(BaseModel):
    """One event on the broker's order-update stream, with the fill it carries, if any."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: OrderEventKind
    order: BrokerOrderState
    fill: Fill | None = None
    broker_ts_ns: int | None = None
    local_ts_ns: int
    raw_event: str | None = None


class BrokerPosition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: Symbol
    qty: Money
    avg_entry_price: Money


class BrokerAccount(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cash: Money
    equity: Money
    buying_power: Money
    currency: str = "USD"
