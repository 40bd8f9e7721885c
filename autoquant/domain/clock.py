"""The clock port. Everything that needs "now" takes a ``Clock``, so tests can drive time."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol

from autoquant.domain.values import from_ns, to_ns


class Clock(Protocol):
    def now_ns(self) -> int:
        """UTC nanoseconds since the epoch."""
        ...


class SystemClock:
    def now_ns(self) -> int:
        return time.time_ns()


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start_ns: int = 1_700_000_000 * 1_000_000_000) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += int(seconds * 1_000_000_000)

    def set(self, moment: datetime) -> None:
        self._now = to_ns(moment)

    def now(self) -> datetime:
        return from_ns(self._now)
