"""Where an order trades within one bar: the paper exchange's ``next_bar`` fill rule, as pure functions.

An order trades only on bars that open after it was accepted, so nothing fills on the bar a decision
was made on. Within a bar the path is taken as open first, then anywhere between low and high:

- **market**: at the open.
- **limit** (buy L): at the open when it opens at or below L (a gap through the limit), else at L when
  the low reaches it; never otherwise. Sells mirror this.
- **stop** (buy S): triggered at the open when it opens at or above S (filled at the open: a gap
  through the stop), else at S when the high reaches it. Then it is a market order.
- **stop-limit** (buy S, L): triggered as a stop; then a limit at L: filled at the open (gap) or at the
  trigger price when that is within the limit, else at L if the bar's low reaches L, else it stays open
  as a triggered limit order.

Returned prices are before slippage; the exchange applies slippage and fees (``fill_model``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from autoquant.domain.values import OrderType, Side


class BarPath(NamedTuple):
    open: Decimal
    high: Decimal
    low: Decimal


class BarOutcome(NamedTuple):
    #: The price it trades at within the bar (before slippage), or None.
    price: Decimal | None
    #: Whether the order's stop has been triggered (before or within this bar).
    triggered: bool


def stop_reached(side: Side, price: Decimal, stop: Decimal) -> bool:
    """A buy stop triggers at or above its stop, a sell stop at or below."""
    return price >= stop if side is Side.BUY else price <= stop


def _limit_in_bar(side: Side, bar: BarPath, limit: Decimal, start: Decimal) -> Decimal | None:
    """Where a limit order trades in the rest of the bar, starting at ``start``."""
    if side is Side.BUY:
        if start <= limit:
            return start
        return limit if bar.low <= limit else None
    if start >= limit:
        return start
    return limit if bar.high >= limit else None


def _stop_trigger(side: Side, bar: BarPath, stop: Decimal) -> Decimal | None:
    """The price at which a stop triggers in the bar: the open on a gap, else the stop itself."""
    if stop_reached(side, bar.open, stop):
        return bar.open
    extreme = bar.high if side is Side.BUY else bar.low
    return stop if stop_reached(side, extreme, stop) else None


def trade_in_bar(
    order_type: OrderType,
    side: Side,
    bar: BarPath,
    *,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    triggered: bool,
) -> BarOutcome:
    """Whether and where an open order trades in ``bar`` (see the module docstring)."""
    if order_type is OrderType.MARKET:
        return BarOutcome(bar.open, triggered)
    if order_type is OrderType.LIMIT:
        assert limit_price is not None  # the order's model guarantees it
        return BarOutcome(_limit_in_bar(side, bar, limit_price, bar.open), triggered)
    start = bar.open
    if not triggered:
        assert stop_price is not None  # the order's model guarantees it
        trigger = _stop_trigger(side, bar, stop_price)
        if trigger is None:
            return BarOutcome(None, False)
        start = trigger
    if order_type in (OrderType.STOP, OrderType.TRAILING_STOP):  # a triggered trailing stop's remainder
        return BarOutcome(start, True)
    assert limit_price is not None  # a stop-limit has both prices
    return BarOutcome(_limit_in_bar(side, bar, limit_price, start), True)
