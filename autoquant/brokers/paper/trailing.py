"""Trailing stops, as pure functions: the high-water mark, the stop it sets, and where one trades in a bar.

Alpaca's trailing stop keeps ``hwm``, the best price seen since the order was accepted (a sell's
highest, a buy's lowest), and a stop ``trail_price`` dollars or ``trail_percent`` percent away from it
(below for a sell, above for a buy), reported as the order's ``stop_price``. The stop moves only in the
trader's favour, with the mark. When the price trades at or through the stop, the order becomes a
market order.

Within one bar (the ``next_bar`` fill rule) the path is taken as the open first, then the adverse
extreme against the stop as it stood after the open, then the favourable extreme raising the mark for
the next bar: a bar never both raises the mark and triggers on the raised stop, which would need the
order of its high and low.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from autoquant.brokers.paper.bar_fills import BarPath, stop_reached
from autoquant.brokers.paper.fill_model import PRICE_QUANTUM
from autoquant.domain.broker import BrokerOrderState
from autoquant.domain.values import Side

CENT = Decimal("0.01")


def better(side: Side, mark: Decimal | None, price: Decimal) -> Decimal:
    """The new high-water mark after ``price``: a sell's highest, a buy's lowest."""
    if mark is None:
        return price
    return max(mark, price) if side is Side.SELL else min(mark, price)


def trail_stop(
    side: Side, hwm: Decimal, trail_price: Decimal | None, trail_percent: Decimal | None
) -> Decimal:
    """The stop ``trail_price`` or ``trail_percent`` away from ``hwm``: below for a sell, above for a buy."""
    offset = trail_price if trail_price is not None else hwm * (trail_percent or Decimal(0)) / 100
    stop = hwm - offset if side is Side.SELL else hwm + offset
    # US equities tick in cents from $1, in hundredths of a cent below.
    tick = CENT if hwm >= 1 else PRICE_QUANTUM
    return max(stop.quantize(tick, rounding=ROUND_HALF_UP), PRICE_QUANTUM)


def marked(state: BrokerOrderState, price: Decimal) -> BrokerOrderState:
    """``state`` with its mark moved by ``price`` and its stop following; itself when nothing moved."""
    hwm = better(state.side, state.hwm, price)
    if hwm == state.hwm:
        return state
    stop = trail_stop(state.side, hwm, state.trail_price, state.trail_percent)
    return state.model_copy(update={"hwm": hwm, "stop_price": stop})


class TrailOutcome(NamedTuple):
    #: The order's state with its mark after the bar.
    state: BrokerOrderState
    #: Where it traded (before slippage), or None.
    price: Decimal | None


def trail_in_bar(state: BrokerOrderState, bar: BarPath) -> TrailOutcome:
    """Whether and where a trailing stop trades in ``bar`` (see the module docstring)."""
    state = marked(state, bar.open)
    assert state.stop_price is not None  # marked() set it
    if stop_reached(state.side, bar.open, state.stop_price):
        return TrailOutcome(state, bar.open)
    adverse = bar.low if state.side is Side.SELL else bar.high
    if stop_reached(state.side, adverse, state.stop_price):
        return TrailOutcome(state, state.stop_price)
    favourable = bar.high if state.side is Side.SELL else bar.low
    return TrailOutcome(marked(state, favourable), None)
