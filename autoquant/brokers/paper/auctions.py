"""The opening and closing auctions: when an ``opg`` or ``cls`` order may be sent, and which auction it meets.

Alpaca's rules (the spec's ``TimeInForce``), against the NYSE calendar (``sessions``):

- **opg** trades only in the next opening auction (the session's open). One sent after 9:28 and before
  19:00 New York time on a trading day is refused; one sent after 19:00 (or on a closed day) waits for
  the next session's open.
- **cls** trades only in the closing auction (the session's close). One sent later than ten minutes
  before the close (15:50 on a normal day) and before 19:00 on a trading day is refused; after 19:00 it
  waits for the next session's close.

An auction order that does not trade in its auction is canceled (a limit that the auction price does
not reach). What the auction price is, is the exchange's: the first price (``last_price``) or the open
of the first bar (``next_bar``) at or after the open; the last price, or the close of the bar that ends
at or after the close.
"""

from __future__ import annotations

import datetime as dt

from autoquant.brokers.paper.order_rules import refused
from autoquant.brokers.paper.sessions import NEW_YORK, OutsideCalendar, TradingCalendar
from autoquant.domain.values import TimeInForce

MINUTE_NS = 60 * 1_000_000_000
OPG_CUTOFF_NS = 2 * MINUTE_NS  # 9:28 for a 9:30 open
CLS_CUTOFF_NS = 10 * MINUTE_NS  # 15:50 for a 16:00 close
REOPENS_AT = dt.time(19, 0)


def _evening_ns(date: dt.date) -> int:
    moment = dt.datetime.combine(date, REOPENS_AT, tzinfo=NEW_YORK)
    return int(moment.timestamp()) * 1_000_000_000


def auction_ns(calendar: TradingCalendar, time_in_force: TimeInForce, now_ns: int) -> int:
    """When the auction an ``opg``/``cls`` order sent at ``now_ns`` trades in; ``BrokerRejected`` (422)
    inside the window in which Alpaca refuses it."""
    try:
        clock = calendar.clock(now_ns)
    except OutsideCalendar as error:
        raise refused(f"time_in_force {time_in_force.value}: {error}") from None
    opg = time_in_force is TimeInForce.OPG
    today = dt.datetime.fromtimestamp(now_ns // 1_000_000_000, dt.UTC).astimezone(NEW_YORK).date()
    (session,) = calendar.days(today, today) or (None,)
    if session is not None:
        cutoff = session.open_ns - OPG_CUTOFF_NS if opg else session.close_ns - CLS_CUTOFF_NS
        if cutoff < now_ns < _evening_ns(today):
            when = "9:28" if opg else "ten minutes before the close"
            raise refused(
                f"{time_in_force.value} orders are not accepted after {when} until 19:00 New York time:"
                " send it after 19:00 for the next session"
            )
    if opg:
        return clock.next_open_ns
    return clock.next_close_ns
