"""Recorded bars released on the clock: each bar at its close time (start + bar length), never before.

Under the ``VirtualClock`` the sleep until a bar's close is a jump, taken only once everything the
previous bar set off (decisions, reservations, submits, fills) has settled; so a backtest runs as
fast as the machine allows and in the same order every time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path

from autoquant.domain.bars import Bar
from autoquant.domain.clock import Clock
from autoquant.research.bars import stream_bars


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
    ) -> None:
        self._files = files
        self._bar_seconds = bar_seconds
        self._clock = clock
        self._start = start
        self._end = end
        self._closed = False
        self._on_bar = on_bar
        self.released = 0

    def bars(self) -> Iterator[Bar]:
        return stream_bars(self._files, self._bar_seconds, self._start, self._end)

    async def __aiter__(self) -> AsyncIterator[Bar]:
        clock = self._clock
        for bar in self.bars():
            if self._closed:
                return
            wait_ns = bar.close_ns - clock.now_ns()
            if wait_ns > 0:
                await clock.sleep(wait_ns / 1e9)  # until the bar has closed: virtual time jumps there
            self.released += 1
            if self._on_bar is not None:
                self._on_bar(self.released)
            yield bar

    async def close(self) -> None:
        self._closed = True
