"""Recorded bars released on the clock: each bar at its close time (start + bar length), never before.

Under the ``VirtualClock`` the sleep until a bar's close is a jump, taken only once everything the
previous bar set off (decisions, reservations, submits, fills) has settled; so a backtest runs as
fast as the machine allows and in the same order every time.

The exchange trades through a bar while it forms, strategies see it once it has closed: at each bar
time the bars go to the exchange first (``to_exchange``: fills at their open, limits and stops within
their range), then the clock settles for ``SETTLE_S`` (the fills reach the ledger through the order
stream), and only then are the bars released to the market-data worker and the strategies. So a
decision on a bar always sees the fills that bar produced, whatever the threads' timing. A bar that
changed no order (the exchange returned no update) has nothing to settle and is released at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from autoquant.domain.bars import Bar
from autoquant.domain.clock import Clock
from autoquant.research.bars import stream_bars

#: Virtual time between the exchange working a bar and the strategies seeing it.
SETTLE_S = 1e-6


def by_time(bars: Iterator[Bar]) -> Iterator[list[Bar]]:
    """Bars grouped by close time (they arrive sorted by it)."""
    group: list[Bar] = []
    for bar in bars:
        if group and bar.close_time != group[0].close_time:
            yield group
            group = []
        group.append(bar)
    if group:
        yield group


class ClockedBars:
    """A ``BarSource`` over recorded bars, released at their close times on ``clock``."""

    def __init__(
        self,
        files: list[Path],
        *,
        bar_seconds: float,
        clock: Clock,
        start: datetime | None = None,
        end: datetime | None = None,
        on_bar: Callable[[int], None] | None = None,
        to_exchange: Callable[[Bar], Sequence[object]] | None = None,
    ) -> None:
        self._files = files
        self._bar_seconds = bar_seconds
        self._clock = clock
        self._start = start
        self._end = end
        self._closed = False
        self._on_bar = on_bar
        self._to_exchange = to_exchange
        self.released = 0

    def bars(self) -> Iterator[Bar]:
        return stream_bars(self._files, self._bar_seconds, self._start, self._end)

    async def __aiter__(self) -> AsyncIterator[Bar]:
        for group in by_time(self.bars()):
            if self._closed:
                return
            close_ns = group[0].close_ns
            while (wait_ns := close_ns - self._clock.now_ns()) > 0:
                await self._clock.sleep(wait_ns / 1e9)  # until the bar has closed: time jumps there
            if self._to_exchange is not None:
                updates = [self._to_exchange(bar) for bar in group]
                if any(updates):
                    await self._clock.sleep(SETTLE_S)  # the fills settle in the ledger first
            for bar in group:
                self.released += 1
                if self._on_bar is not None:
                    self._on_bar(self.released)
                yield bar

    async def close(self) -> None:
        self._closed = True
