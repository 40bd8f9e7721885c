"""Synthetic bars: a seeded random walk per symbol, one bar per symbol every ``bar_seconds``.

Used when no market data is configured, so the daemon can run offline. Deterministic under a seed:
the walk for a symbol depends only on (seed, symbol), not on the other symbols or on timing. Bars are
stamped with the clock when they are emitted, so freshness behaves as with live data. All prices are
Decimal, quantized to the cent.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

from autoquant.domain.bars import Bar
from autoquant.domain.clock import Clock
from autoquant.domain.values import from_ns
from autoquant.marketdata.source import Sleep

CENT = Decimal("0.01")
_FLOOR = Decimal("1.00")
#: The largest move per bar, in basis points of the previous close.
_MAX_STEP_BPS = 30
_MAX_WICK_BPS = 10
_BPS = Decimal(10_000)


class _Walk:
    """One symbol's random walk; integer basis-point steps keep the arithmetic exact."""

    def __init__(self, seed: int, symbol: str, start: Decimal) -> None:
        digest = hashlib.sha256(f"synthetic-v1\x1f{seed}\x1f{symbol}".encode()).digest()
        self.rng = random.Random(int.from_bytes(digest[:8], "big"))
        self.symbol = symbol
        self.close = start.quantize(CENT)

    def step(self) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
        rng = self.rng
        open_ = self.close
        close = (open_ + open_ * rng.randint(-_MAX_STEP_BPS, _MAX_STEP_BPS) / _BPS).quantize(CENT)
        close = max(close, _FLOOR)
        high = (max(open_, close) * (1 + rng.randint(0, _MAX_WICK_BPS) / _BPS)).quantize(CENT)
        low = (min(open_, close) * (1 - rng.randint(0, _MAX_WICK_BPS) / _BPS)).quantize(CENT)
        high = max(high, open_, close)  # quantizing can round a wick inside the body
        low = max(min(low, open_, close), CENT)
        volume = Decimal(rng.randint(100, 10_000))
        self.close = close
        return open_, high, low, close, volume


#: Bars behind the clock after which the walk skips to the present instead of catching up.
_MAX_LAG_BARS = 50


class SyntheticBars:
    """Emits one bar per symbol, then sleeps ``bar_seconds``; forever, or ``limit`` rounds."""

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        bar_seconds: float,
        seed: int,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        start_price: Decimal = Decimal("100.00"),
        limit: int | None = None,
    ) -> None:
        if bar_seconds <= 0:
            raise ValueError(f"bar_seconds must be positive, got {bar_seconds}")
        if start_price < _FLOOR:
            raise ValueError(f"start_price must be at least {_FLOOR}, got {start_price}")
        self._walks = [_Walk(seed, symbol, start_price) for symbol in symbols]
        # Whole microseconds: a datetime holds no finer, and close times must stay distinct.
        self._bar_ns = max(1, round(bar_seconds * 1_000_000)) * 1_000
        self._bar_seconds = bar_seconds
        self._clock = clock
        self._sleep = sleep
        self._limit = limit
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[Bar]:
        # Bars close on a fixed grid of bar_seconds, each right after the one before, so a busy
        # event loop delays a bar instead of opening a hole between two (which the reorder buffer
        # would rightly report as missing data). Only after a long stall (the machine suspended)
        # does the walk jump to the present, and then the hole is real.
        rounds = 0
        next_close = (self._clock.now_ns() // self._bar_ns + 1) * self._bar_ns
        while not self._closed and (self._limit is None or rounds < self._limit):
            delay_ns = next_close - self._clock.now_ns()
            if delay_ns > 0:
                await self._sleep(delay_ns / 1e9)
            elif -delay_ns > _MAX_LAG_BARS * self._bar_ns:
                next_close = (self._clock.now_ns() // self._bar_ns) * self._bar_ns
            close_ns, next_close = next_close, next_close + self._bar_ns
            close_time, open_time = from_ns(close_ns), from_ns(close_ns - self._bar_ns)
            for walk in self._walks:
                open_, high, low, close, volume = walk.step()
                yield Bar(
                    symbol=walk.symbol,
                    open_time=open_time,
                    close_time=close_time,
                    open=open_,
                    high=high,
                    low=low,
                    close=close,
                    volume=volume,
                    source="synthetic",
                )
            rounds += 1

    async def close(self) -> None:
        self._closed = True
