"""The clock port. Everything that needs "now", a pause or a deadline takes a ``Clock``.

Nothing in the trading path calls ``time.time``, ``time.monotonic`` or ``asyncio.sleep`` itself, so a
virtual clock (``autoquant.clocks.VirtualClock``) can run a whole trading day in a second of real time.
The implementations live in ``autoquant.clocks``: the domain only names what a clock offers.
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int:
        """UTC nanoseconds since the epoch (wall-clock time, as stamped on events)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for intervals and heartbeats."""
        ...

    def sleep(self, seconds: float) -> Awaitable[None]:
        """Pause the calling task for ``seconds`` of this clock's time."""
        ...

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        """A deadline ``seconds`` from now on this clock (``None``: none); raises ``TimeoutError``."""
        ...
