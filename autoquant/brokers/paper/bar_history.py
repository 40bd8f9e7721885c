"""Historical bars of the paper server's price path, in Alpaca's timeframes, with paging.

A request is symbols, a timeframe, ``start`` and ``end`` (both inclusive, on the bar's open time), a
``limit`` over all symbols and a ``sort``. The answer is per symbol, symbol by symbol in name order,
time order within one; a page that stops early carries a ``next_page_token`` to continue.

- **Timeframes** are Alpaca's, with buckets aligned on UTC (``domain.timeframes``). The paper venue
  trades around the clock, so every bucket has a bar, like Alpaca's crypto bars.
- **Consistent with the stream**: a bucket is the aggregate of the live feed's bars (``bar_ns`` long)
  in it, so the timeframe must be a whole number of them; a bar of exactly ``bar_ns`` is the very bar
  the stream published. Only finished buckets are served (their end at or before ``now``).
- **Paging**: a page holds at most ``limit`` bars, and at most ``WORK_BUDGET`` of the feed's bars go
  into making it (a year of daily bars made of one-second bars would take a while otherwise); the
  token is opaque to clients (base64 of the next symbol and open time).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from autoquant.brokers.paper.prices import PricePath
from autoquant.domain.bars import Bar
from autoquant.domain.timeframes import Timeframe, TimeframeError

NS = 1_000_000_000
DAY_NS = 86_400 * NS
#: The feed's bars that may go into one page (about a second of work at most).
WORK_BUDGET = 50_000


class BarRequestError(ValueError):
    """A bar request that cannot be answered; the message says what to change."""


def parse_timeframe(text: str | None) -> Timeframe:
    try:
        return Timeframe.parse(text)
    except TimeframeError as error:
        raise BarRequestError(str(error)) from None


def encode_token(symbol: str, start_ns: int) -> str:
    return base64.urlsafe_b64encode(f"{symbol}|{start_ns}".encode()).decode()


def decode_token(token: str) -> tuple[str, int]:
    try:
        symbol, _, start = base64.urlsafe_b64decode(token.encode()).decode().rpartition("|")
        return symbol, int(start)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BarRequestError(f"invalid page_token {token!r}: pass back the one a page gave") from None


@dataclass(frozen=True)
class BarPage:
    bars: dict[str, list[Bar]]
    next_page_token: str | None


def bar_page(
    path: PricePath,
    symbols: Sequence[str],
    timeframe: Timeframe,
    *,
    start_ns: int,
    end_ns: int,
    now_ns: int,
    limit: int,
    sort: Literal["asc", "desc"] = "asc",
    page_token: str | None = None,
) -> BarPage:
    """One page of bars (see the module docstring)."""
    _check_grid(path.bar_ns, timeframe)
    resume = decode_token(page_token) if page_token else None
    bars: dict[str, list[Bar]] = {}
    taken = work = 0
    for symbol in sorted(symbols):
        if resume is not None and symbol < resume[0]:
            continue
        at = resume[1] if resume is not None and symbol == resume[0] else None
        for bucket in _buckets(timeframe, start_ns, end_ns, now_ns, sort, at):
            count = (timeframe.next_start(bucket) - bucket) // path.bar_ns
            if taken >= limit or (taken and work + count > WORK_BUDGET):
                return BarPage(bars, encode_token(symbol, bucket))
            bars.setdefault(symbol, []).append(path.aggregate(symbol, bucket // path.bar_ns, count))
            taken += 1
            work += count
    return BarPage(bars, None)


def _buckets(
    timeframe: Timeframe, start_ns: int, end_ns: int, now_ns: int, sort: str, at: int | None
) -> Iterator[int]:
    """Starts of the finished buckets opening in [start_ns, end_ns], in ``sort`` order, from ``at``."""
    first = timeframe.bucket_start(start_ns)
    if first < start_ns:
        first = timeframe.next_start(first)
    last = timeframe.bucket_start(min(end_ns, now_ns))
    while last >= first and timeframe.next_start(last) > now_ns:
        last = timeframe.next_start(last, -1)
    if sort == "asc":
        bucket = first if at is None else max(first, timeframe.bucket_start(at))
        while bucket <= last:
            yield bucket
            bucket = timeframe.next_start(bucket)
    else:
        bucket = last if at is None else min(last, timeframe.bucket_start(at))
        while bucket >= first:
            yield bucket
            bucket = timeframe.next_start(bucket, -1)


def _check_grid(bar_ns: int, timeframe: Timeframe) -> None:
    unit_ns = timeframe.fixed_ns or DAY_NS
    if unit_ns % bar_ns:
        raise BarRequestError(
            f"timeframe {timeframe.amount}{timeframe.unit} is not a whole number of the paper server's"
            f" {bar_ns / NS:g}-second bars ([marketdata] bar_seconds)"
        )
