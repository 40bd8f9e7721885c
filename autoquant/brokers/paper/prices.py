"""A minimal synthetic price source for the paper server: a seeded random walk per symbol.

The daemon has its own market data; this exists so a stand-alone paper server has prices to fill
against and bars to stream. Each step moves the price by a seeded Gaussian number of basis points,
quantized to a cent, so the same seed gives the same bars in every run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from autoquant.domain.bars import Bar
from autoquant.domain.values import from_ns

CENT = Decimal("0.01")
START_PRICE = Decimal("100.00")


class RandomWalk:
    """Bars for ``symbols``; ``next_bars(close_ns)`` makes one bar per symbol ending at ``close_ns``."""

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        seed: int,
        bar_ns: int,
        start: dict[str, Decimal] | None = None,
        volatility_bps: int = 20,
    ) -> None:
        self._random = random.Random(seed)
        self._bar_ns = bar_ns
        self._volatility_bps = volatility_bps
        self._prices = {s: (start or {}).get(s) or START_PRICE for s in symbols}

    def price(self, symbol: str) -> Decimal:
        return self._prices[symbol]

    def _step(self, price: Decimal) -> Decimal:
        move_bps = Decimal(round(self._random.gauss(0.0, self._volatility_bps)))
        moved = (price * (1 + move_bps / 10_000)).quantize(CENT, rounding=ROUND_HALF_EVEN)
        return max(moved, CENT)

    def next_bars(self, close_ns: int) -> list[Bar]:
        open_time, close_time = from_ns(close_ns - self._bar_ns), from_ns(close_ns)
        bars = []
        for symbol, open_price in self._prices.items():
            middle = self._step(open_price)
            close = self._step(middle)
            bars.append(
                Bar(
                    symbol=symbol,
                    open_time=open_time,
                    close_time=close_time,
                    open=open_price,
                    high=max(open_price, middle, close),
                    low=min(open_price, middle, close),
                    close=close,
                    volume=Decimal(self._random.randint(100, 10_000)),
                    source="paper-server",
                )
            )
            self._prices[symbol] = close
        return bars
