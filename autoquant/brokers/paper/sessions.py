"""The US equity trading calendar (NYSE, ``XNYS``) from ``exchange_calendars``, for ``/v2/calendar``
and ``/v2/clock``.

Holidays and early closes come from the maintained library, never from a hand-written list. The
calendar is built once, on first use (about a second), for 2000-01-01 to two years from now, and kept
as sorted nanosecond lists so each clock answer is a bisect. Extended-hours session bounds are
Alpaca's: 04:00 to 20:00 New York time on every trading day. Settlement is T+1 from 2024-05-28 (the
SEC's move from T+2), T+2 before.
"""

from __future__ import annotations

import bisect
import datetime as dt
import warnings
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
FIRST_DAY = dt.date(2000, 1, 1)
T_PLUS_ONE_FROM = dt.date(2024, 5, 28)


class OutsideCalendar(ValueError):
    """A date the calendar does not cover."""


@dataclass(frozen=True)
class TradingDay:
    date: dt.date
    open_ns: int
    close_ns: int
    settlement_date: dt.date


@dataclass(frozen=True)
class MarketClock:
    now_ns: int
    is_open: bool
    next_open_ns: int
    next_close_ns: int


class TradingCalendar:
    """Trading days between ``first`` and ``last``, their opens and closes (UTC nanoseconds)."""

    def __init__(self, days: list[tuple[dt.date, int, int]]) -> None:
        self.dates = [d for d, _, _ in days]
        self.opens = [o for _, o, _ in days]
        self.closes = [c for _, _, c in days]

    @property
    def first(self) -> dt.date:
        return self.dates[0]

    @property
    def last(self) -> dt.date:
        return self.dates[-1]

    def days(self, start: dt.date, end: dt.date) -> list[TradingDay]:
        """The trading days from ``start`` to ``end``, both inclusive."""
        low = bisect.bisect_left(self.dates, start)
        high = bisect.bisect_right(self.dates, end)
        t_plus_two = bisect.bisect_left(self.dates, T_PLUS_ONE_FROM)
        found = []
        for i in range(low, high):
            settle = i + (2 if i < t_plus_two else 1)
            if settle >= len(self.dates):
                break  # its settlement day is past what the calendar knows
            found.append(TradingDay(self.dates[i], self.opens[i], self.closes[i], self.dates[settle]))
        return found

    def clock(self, now_ns: int) -> MarketClock:
        """Whether the regular session is open at ``now_ns``, and the next open and close after it."""
        i = bisect.bisect_right(self.opens, now_ns)
        if i == 0 or i >= len(self.opens):
            raise OutsideCalendar(
                f"{_iso(now_ns)} is outside the trading calendar ({self.first} … {self.last})"
            )
        is_open = now_ns < self.closes[i - 1]
        next_close = self.closes[i - 1] if is_open else self.closes[i]
        return MarketClock(now_ns, is_open, self.opens[i], next_close)


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat()


def _ns(timestamp: object) -> int:
    value = getattr(timestamp, "value", None)
    if not isinstance(value, int):
        raise TypeError(f"not a pandas timestamp: {timestamp!r}")
    return value


@cache
def nyse() -> TradingCalendar:
    """The NYSE calendar (built once; importing ``exchange_calendars`` and pandas takes a moment)."""
    import exchange_calendars  # heavy (pandas): loaded on the first calendar question

    last = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=730)
    with warnings.catch_warnings():
        # exchange_calendars 4.13 uses pandas APIs that pandas 3.1 deprecates (Series.values on tz
        # data); the values are right, the warning is theirs to fix, not a fault of ours.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        calendar = exchange_calendars.get_calendar("XNYS", start=FIRST_DAY.isoformat(), end=last.isoformat())
    sessions = calendar.sessions
    opens = calendar.opens
    closes = calendar.closes
    return TradingCalendar(
        [(session.date(), _ns(opens[session]), _ns(closes[session])) for session in sessions]
    )


def local_hhmm(ns: int, *, colon: bool) -> str:
    """``ns`` as New York wall-clock time: ``"09:30"`` or ``"0930"``."""
    moment = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC).astimezone(NEW_YORK)
    return moment.strftime("%H:%M" if colon else "%H%M")


def local_iso(ns: int) -> str:
    """``ns`` as RFC 3339 in New York time, as Alpaca's clock writes it (``…-05:00``)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC).astimezone(NEW_YORK)
    text = moment.isoformat()
    return text if rest == 0 else f"{text[:19]}.{rest:09d}{text[19:]}"
