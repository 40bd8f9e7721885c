"""Shared test helpers: a sleep that advances a FakeClock instead of waiting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from autoquant.clocks import FakeClock
from autoquant.domain.bars import Bar

T0 = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)


def clock_sleep(clock: FakeClock) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return sleep


def bar_at(i: int, symbol: str = "AAPL", seconds: int = 60) -> Bar:
    """The i-th bar of a regular series: closes at T0 + (i + 1) * seconds."""
    price = Decimal(100 + i)
    return Bar(
        symbol=symbol,
        open_time=T0 + timedelta(seconds=i * seconds),
        close_time=T0 + timedelta(seconds=(i + 1) * seconds),
        open=price,
        high=price,
        low=price,
        close=price,
        volume=Decimal(1),
        source="test",
    )
