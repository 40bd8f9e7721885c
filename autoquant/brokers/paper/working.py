"""What an open order does next, as pure functions: wait, fill at a price, or end (canceled, expired).

Two rules (``PaperSettings.fill_rule``):

- ``step_at_price`` (``last_price``): against the symbol's current price at ``now``. A day order past
  its expiry expires. A trailing stop first moves its mark with the price (even before it is due).
  Once due: a stop triggers at or through its stop; a market order fills, a limit one while
  marketable. ioc/fok, and opg/cls at their auction, end canceled when they cannot trade.
- ``step_in_bar`` (``next_bar``): within one bar's range (``bar_fills``, ``trailing``); an opg order
  trades at the open of the first bar that ends after its auction, a cls order at the close of the
  first bar that ends at or after it.

The returned record carries what the order acquired on the way (a trigger, a mark, an expiry), so
the exchange keeps it whether the order then fills, ends or waits.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from enum import Enum
from typing import NamedTuple

from autoquant.brokers.paper.admission import end_of_utc_day_ns
from autoquant.brokers.paper.bar_fills import BarPath, stop_reached, trade_in_bar
from autoquant.brokers.paper.fill_model import is_marketable
from autoquant.brokers.paper.order_rules import AUCTIONS
from autoquant.brokers.paper.store import OrderRecord
from autoquant.brokers.paper.trailing import marked, trail_in_bar
from autoquant.domain.bars import Bar
from autoquant.domain.values import OrderType, TimeInForce, to_ns

IMMEDIATE = frozenset({TimeInForce.IOC, TimeInForce.FOK})
#: ioc/fok trade at their first chance, an auction order in its auction: else they are canceled.
ONCE = IMMEDIATE | AUCTIONS


class Action(Enum):
    WAIT = "wait"
    FILL = "fill"
    CANCEL = "cancel"
    EXPIRE = "expire"


class Step(NamedTuple):
    record: OrderRecord
    action: Action
    #: Where it trades (before slippage), for FILL.
    price: Decimal | None = None


def would_act(record: OrderRecord, price: Decimal | None) -> bool:
    """Whether a due order would change at ``price`` now (so it is due, not waiting)."""
    state = record.state
    if state.time_in_force in ONCE and record.fills_done == 0:
        return True
    if price is None:
        return False
    if state.order_type is OrderType.TRAILING_STOP and state.stop_price is None:
        return True  # its first mark
    if state.stop_price is not None and not record.triggered:
        return stop_reached(state.side, price, state.stop_price)
    return is_marketable(state.side, price, state.limit_price)


def step_at_price(
    record: OrderRecord, price: Decimal | None, now: int, *, closed_until: int | None = None
) -> Step:
    """The ``last_price`` rule (see the module docstring); ``closed_until``: the order's session is
    closed until then (``market_hours``), so it waits, its mark included."""
    state = record.state
    if record.expires_ns is not None and now >= record.expires_ns:
        return Step(record, Action.EXPIRE)
    if closed_until is not None and state.time_in_force not in AUCTIONS:
        if closed_until > record.due_ns:
            record = dataclasses.replace(record, due_ns=closed_until)
        return Step(record, Action.WAIT)
    if price is not None and state.order_type is OrderType.TRAILING_STOP and not record.triggered:
        moved = marked(state, price)
        if moved is not state:
            record, state = record.with_state(moved), moved
    if now < record.due_ns:
        return Step(record, Action.WAIT)
    give_up = Action.CANCEL if state.time_in_force in ONCE else Action.WAIT
    if price is None:
        return Step(record, give_up)
    if state.stop_price is not None and not record.triggered:
        if not stop_reached(state.side, price, state.stop_price):
            return Step(record, give_up)
        record = record.with_trigger()
    if not is_marketable(state.side, price, state.limit_price):
        return Step(record, give_up)
    return Step(record, Action.FILL, price)


def step_in_bar(record: OrderRecord, bar: Bar, now: int) -> Step:
    """The ``next_bar`` rule: expire a day order whose day is over, else trade it in the bar."""
    state = record.state
    if state.time_in_force in AUCTIONS:
        # Its auction is its due time, told by the bar's own times (not the clock's): opg trades in
        # the first bar that ends after it (one ending at 9:30 is pre-market), cls in the first bar
        # that ends at or after it.
        opg = state.time_in_force is TimeInForce.OPG
        bar_end = to_ns(bar.close_time)
        if bar_end < record.due_ns or (opg and bar_end == record.due_ns):
            return Step(record, Action.WAIT)
        auction = bar.open if opg else bar.close
        if not is_marketable(state.side, auction, state.limit_price):
            return Step(record, Action.CANCEL)
        return Step(record, Action.FILL, auction)
    if now < record.due_ns:
        return Step(record, Action.WAIT)
    if state.time_in_force is TimeInForce.DAY:
        open_ns = to_ns(bar.open_time)
        if record.expires_ns is None:
            # Its day is that of the first bar it can trade on (an order decided after the close
            # waits for the next session, as Alpaca queues it).
            record = record.with_expiry(end_of_utc_day_ns(open_ns))
        elif open_ns >= record.expires_ns:
            return Step(record, Action.EXPIRE)
    path = BarPath(bar.open, bar.high, bar.low)
    if state.order_type is OrderType.TRAILING_STOP and not record.triggered:
        trail = trail_in_bar(state, path)
        if trail.state is not state:
            record = record.with_state(trail.state)
        if trail.price is None:
            return Step(record, Action.WAIT)
        return Step(record.with_trigger(), Action.FILL, trail.price)
    outcome = trade_in_bar(
        state.order_type,
        state.side,
        path,
        limit_price=state.limit_price,
        stop_price=state.stop_price,
        triggered=record.triggered,
    )
    if outcome.triggered and not record.triggered:
        record = record.with_trigger()
    if outcome.price is None:
        return Step(record, Action.CANCEL if state.time_in_force in IMMEDIATE else Action.WAIT)
    return Step(record, Action.FILL, outcome.price)
