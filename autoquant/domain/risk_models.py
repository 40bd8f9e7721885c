"""What the risk gate reads and what it answers: the limits, the account snapshot, the check results.

The gate itself (``autoquant.domain.risk.check``) is in ``risk``; this module holds only its data, so
the config and the workers that build a snapshot or record a verdict need not know how the checks
are computed. ``RiskCheck`` and ``RiskVerdict`` are NamedTuples, not pydantic models, because the
gate builds them on the tick-to-submit path twice per order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from autoquant.domain.controls import ControlState
from autoquant.domain.orders import Order
from autoquant.domain.values import Money, NonNegative, Price, Side, Symbol

# The names of the checks, in the order the gate runs them (each ``RiskCheck.name`` is one of these).
TRADING_STATE = "trading_state"
PAUSED = "paused"
DATA_FRESHNESS = "data_freshness"
MAX_ORDER_NOTIONAL = "max_order_notional"
MAX_POSITION_NOTIONAL = "max_position_notional"
MAX_GROSS_EXPOSURE = "max_gross_exposure"
DAILY_LOSS_LIMIT = "daily_loss_limit"
MAX_DRAWDOWN = "max_drawdown"
MAX_ORDERS_PER_MINUTE = "max_orders_per_minute"
#: Checks a smaller quantity can satisfy; only when these alone fail may an order be resized.
NOTIONAL_CHECKS = frozenset({MAX_ORDER_NOTIONAL, MAX_POSITION_NOTIONAL, MAX_GROSS_EXPOSURE})


class RiskLimits(BaseModel):
    """The account-level limits; ``autoquant.runtime.config.RiskSettings`` (``[risk]``) is this model.

    Limits are inclusive: exactly at a limit passes, beyond it fails.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_order_notional: Money = Decimal("10000")
    max_position_notional: Money = Decimal("20000")  # per symbol, open orders included
    max_gross_exposure: Money = Decimal("50000")  # across strategies, open orders included
    daily_loss_limit: Money = Decimal("2000")
    max_drawdown: Money = Decimal("3000")  # from the day's peak equity
    max_orders_per_minute: int = Field(default=60, gt=0)
    max_data_age_s: float = Field(default=30.0, gt=0)
    #: Shrink an order that breaches a notional limit to fit, instead of denying it.
    resize: bool = False
    #: Seconds an order may stay UNKNOWN before the kill switch halts trading.
    max_unknown_age_s: float = Field(default=60.0, gt=0)
    #: Rejects in a row that halt trading.
    max_consecutive_rejects: int = Field(default=5, gt=0)
    cancel_all_on_halt: bool = False
    #: When the kill switch trips (HALT or REDUCE on its own triggers), also flatten the account: cancel
    #: every open order and close every position (Alpaca's ``DELETE /v2/positions?cancel_orders=true``).
    flatten_on_trip: bool = False


class OpenOrderExposure(BaseModel):
    """What is still open of one order, any strategy: it may yet fill and add to the position."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: Symbol
    side: Side
    remaining_qty: NonNegative
    #: Limit price, or the last price for a market order.
    price: Price


def open_exposures(
    orders: Iterable[Order], last_prices: Mapping[str, Decimal], leave_out: frozenset[str] = frozenset()
) -> Iterator[tuple[str, Side, Decimal]]:
    """``(symbol, side, shares still open)`` of each open order that may yet fill at a known price, as the
    gate counts them: the remaining quantity, or for a notional order not filled yet its dollars at the
    last price (once partly filled, the broker's shares are counted). Orders in ``leave_out`` (client
    order ids: the pre-submit check's own order) are not counted."""
    for order in orders:
        if order.client_order_id in leave_out:
            continue
        last = last_prices.get(order.symbol)
        priced = order.limit_price or order.stop_price or last
        if order.notional is not None and order.filled_qty == 0 and last:
            remaining = order.notional / last
        else:
            remaining = order.remaining_qty
        if priced is not None and remaining > 0:
            yield order.symbol, order.side, remaining


def open_quantities(
    orders: Iterable[tuple[str, Side, Decimal]],
) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """The open buy and sell quantities per symbol of ``(symbol, side, remaining qty)`` orders.

    Each sum starts at ``Decimal(0)`` and adds in the orders' order, so it never has a positive
    exponent (``1E+2`` open prints as ``100``) whichever way the snapshot was built.
    """
    buys: dict[str, Decimal] = {}
    sells: dict[str, Decimal] = {}
    zero = Decimal(0)
    for symbol, side, qty in orders:
        totals = buys if side is Side.BUY else sells
        totals[symbol] = totals.get(symbol, zero) + qty
    return buys, sells


class RiskSnapshot(BaseModel):
    """The account as the gate sees it at ``now_ns``: all strategies, fresh from the ledger.

    Open orders are held as their open quantity per symbol and side (``open_buys``, ``open_sells``):
    that is all the checks read of them, and the risk gate sums them as it walks the ledger's open
    orders, once per snapshot. A caller holding a list of orders may pass ``open_orders`` (a sequence
    of ``OpenOrderExposure``) instead; they are summed the same way.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    now_ns: int
    #: Signed account-level position quantity per symbol (long positive), all strategies.
    positions: dict[str, Money] = {}
    last_prices: dict[str, Price] = {}
    #: Remaining quantity of every open order per symbol, buys and sells apart, all strategies.
    open_buys: dict[str, NonNegative] = {}
    open_sells: dict[str, NonNegative] = {}
    #: The open orders behind the sums, when the caller built the snapshot from a list of them (tests,
    #: the risk bench); the checks read only ``open_buys`` and ``open_sells``.
    open_orders: tuple[OpenOrderExposure, ...] = ()
    start_equity: Money
    peak_equity: Money
    equity: Money
    #: Submit times (UTC ns) of recent orders, ascending; those older than a minute before ``now_ns``
    #: are ignored.
    recent_order_ns: Sequence[int] = ()
    #: Nanoseconds since the newest bar per symbol.
    data_age_ns: dict[str, int] = {}
    controls: ControlState = ControlState()

    @model_validator(mode="before")
    @classmethod
    def _sum_open_orders(cls, data: Any) -> Any:
        """Given ``open_orders``, fill ``open_buys`` and ``open_sells`` from them."""
        if not isinstance(data, dict) or not data.get("open_orders"):
            return data
        if data.get("open_buys") or data.get("open_sells"):
            raise ValueError("give open_orders or open_buys/open_sells, not both")
        orders = tuple(OpenOrderExposure.model_validate(o) for o in data["open_orders"])
        buys, sells = open_quantities((o.symbol, o.side, o.remaining_qty) for o in orders)
        return {**data, "open_orders": orders, "open_buys": buys, "open_sells": sells}


class RiskCheck(NamedTuple):
    """One check's result. The detail text is formatted only when read, to keep the gate cheap."""

    name: str
    passed: bool
    template: str
    values: tuple[object, ...] = ()

    @property
    def detail(self) -> str:
        """The numbers behind the result, e.g. ``order notional 10001 (qty 1 x 10001), max 10000``."""
        return self.template.format(*self.values) if self.values else self.template

    def as_dict(self) -> dict[str, object]:
        """For the ledger's risk events: ``name``, ``passed`` and ``detail``."""
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


class RiskVerdict(NamedTuple):
    """The gate's answer. ``resized_qty`` is set when the order is allowed only at that smaller size.

    A NamedTuple like ``RiskCheck``, not a pydantic model: it is built on the hot path from values
    the gate computed, so there is nothing to validate. ``as_dict`` gives the ledger's JSON shape.
    """

    allowed: bool
    checks: tuple[RiskCheck, ...]
    reason: str
    resized_qty: Decimal | None = None

    @property
    def failed(self) -> tuple[RiskCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def as_dict(self) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "resized_qty": None if self.resized_qty is None else str(self.resized_qty),
            "checks": [c.as_dict() for c in self.checks],
        }
