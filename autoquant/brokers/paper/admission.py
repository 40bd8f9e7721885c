"""An accepted order as the venue first holds it: when it may first trade, when it expires, its first mark.

- It may trade no earlier than ``latency`` after acceptance; an ``opg``/``cls`` order not before its
  auction (``auctions``), which also refuses one sent inside Alpaca's closed window.
- A ``day`` order expires at the end of the UTC day it was accepted in (24/7 clock), unless the fill
  rule is ``next_bar``, where its day is that of the first bar it can trade on (set when that bar
  comes). Auction orders do not expire: they trade or are canceled in their auction.
- With ``market_hours`` (``market_hours``), a stock order sent while its session is closed waits for
  the next open, and a day order expires at its session's close.
- A trailing stop takes the current price, if there is one, as its high-water mark (``trailing``).
"""

from __future__ import annotations

from decimal import Decimal

from autoquant.brokers.paper.auctions import auction_ns
from autoquant.brokers.paper.market_hours import Hours
from autoquant.brokers.paper.order_rules import AUCTIONS
from autoquant.brokers.paper.order_updates import accepted_state
from autoquant.brokers.paper.sessions import nyse
from autoquant.brokers.paper.store import OrderRecord
from autoquant.brokers.paper.trailing import marked, trail_stop
from autoquant.domain.broker import BrokerOrderState, OrderRequest
from autoquant.domain.values import OrderType, TimeInForce

DAY_NS = 86_400 * 1_000_000_000


def end_of_utc_day_ns(ns: int) -> int:
    """The next 00:00 UTC after ``ns``: when a day order created at ``ns`` expires."""
    return (ns // DAY_NS + 1) * DAY_NS


def admit(
    request: OrderRequest,
    broker_order_id: str,
    *,
    now: int,
    latency_ns: int,
    by_bar: bool,
    price: Decimal | None,
    hours: Hours,
    replaces: BrokerOrderState | None = None,
) -> OrderRecord:
    """The record of ``request`` accepted at ``now`` (``replaces``: the order it replaces, whose mark a
    trailing stop keeps). Raises ``BrokerRejected`` for an auction order sent in the closed window."""
    state = accepted_state(request, broker_order_id, now)
    if request.order_type is OrderType.TRAILING_STOP:
        if replaces is not None and replaces.hwm is not None:
            stop = trail_stop(state.side, replaces.hwm, state.trail_price, state.trail_percent)
            state = state.model_copy(update={"hwm": replaces.hwm, "stop_price": stop})
        if price is not None:
            state = marked(state, price)
    due = now + latency_ns
    expires = None
    if request.time_in_force in AUCTIONS:
        return OrderRecord(state, max(due, auction_ns(nyse(), request.time_in_force, now)), None)
    closed_until = hours.closed_until(request.symbol, request.extended_hours, now)
    if closed_until is not None:
        due = max(due, closed_until)  # queued for the next open
    if request.time_in_force is TimeInForce.DAY and not by_bar:
        expires = hours.day_close(request.symbol, request.extended_hours, now) or end_of_utc_day_ns(now)
    return OrderRecord(state=state, due_ns=due, expires_ns=expires)
