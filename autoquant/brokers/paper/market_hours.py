"""``[paper] market_hours = true``: equity orders trade only while the market is open, as at Alpaca.

By default the paper venue trades around the clock. With ``market_hours``, for stocks (crypto still
trades 24/7) and the ``last_price`` fill rule:

- An order trades only in its session: the regular session (9:30 to 16:00 New York time, early
  closes included, from the NYSE calendar), or for an ``extended_hours`` order the extended one
  (4:00 to 20:00 on trading days).
- An order sent while its session is closed is accepted and queued: it waits for the next open
  (Alpaca: "orders submitted after 4:00pm ET will be queued up for release the next trading day");
  market orders are queued like the others, not refused.
- A ``day`` order lives until its session's close: today's close if sent while the session is open,
  else the close of the session it was queued for; then it expires.

opg/cls keep their own times (``auctions``). Under ``next_bar`` the bars themselves say when the
market traded, so this setting does not apply there.
"""

from __future__ import annotations

import bisect
import datetime as dt
from functools import cache
from typing import NamedTuple

from autoquant.brokers.paper.sessions import NEW_YORK, OutsideCalendar, TradingCalendar, nyse

EXTENDED_OPEN = dt.time(4, 0)
EXTENDED_CLOSE = dt.time(20, 0)


class Window(NamedTuple):
    #: Whether the session is open now.
    open: bool
    #: When it next opens (closed), or closes (open).
    edge_ns: int
    #: The close of the session now open, or of the next one.
    close_ns: int


def _at(date: dt.date, moment: dt.time) -> int:
    return int(dt.datetime.combine(date, moment, tzinfo=NEW_YORK).timestamp()) * 1_000_000_000


@cache
def _extended(calendar: TradingCalendar) -> tuple[list[int], list[int]]:
    return [_at(d, EXTENDED_OPEN) for d in calendar.dates], [_at(d, EXTENDED_CLOSE) for d in calendar.dates]


def window(now_ns: int, *, extended: bool, calendar: TradingCalendar | None = None) -> Window:
    """The regular (or extended) session as seen at ``now_ns``."""
    calendar = calendar or nyse()
    opens, closes = _extended(calendar) if extended else (calendar.opens, calendar.closes)
    i = bisect.bisect_right(opens, now_ns)
    if i == 0 or i >= len(opens):
        raise OutsideCalendar(
            f"{now_ns} ns is outside the trading calendar ({calendar.first} … {calendar.last})"
        )
    if now_ns < closes[i - 1]:
        return Window(True, closes[i - 1], closes[i - 1])
    return Window(False, opens[i], closes[i])


class Hours:
    """The venue's hours for one order: always open, or the calendar's (see the module docstring)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def applies(self, symbol: str) -> bool:
        return self.enabled and "/" not in symbol

    def closed_until(self, symbol: str, extended: bool, now_ns: int) -> int | None:
        """When the order's session next opens, if it is closed at ``now_ns``; None if open (or 24/7)."""
        if not self.applies(symbol):
            return None
        found = window(now_ns, extended=extended)
        return None if found.open else found.edge_ns

    def day_close(self, symbol: str, extended: bool, now_ns: int) -> int | None:
        """When a day order sent at ``now_ns`` expires: its session's close; None when 24/7."""
        if not self.applies(symbol):
            return None
        return window(now_ns, extended=extended).close_ns
