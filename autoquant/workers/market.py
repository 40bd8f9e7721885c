"""The market-data worker: bars in, through the reorder buffer, out to prices, freshness and strategies.

It is the only writer of ``MarketState``; the strategy worker and the risk gate read it. With the
embedded paper exchange, each released bar is also the exchange's price, so fills happen against the
same data the strategies saw.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from itertools import islice

import structlog

from autoquant.domain.bars import Bar
from autoquant.domain.clock import Clock
from autoquant.marketdata.freshness import FreshnessTracker
from autoquant.marketdata.reorder import DataGap, ReorderBuffer
from autoquant.marketdata.source import BarSource

log = structlog.get_logger("autoquant.marketdata")

#: How many bars per symbol are kept for strategies (the longest warm-up must fit).
HISTORY = 512


class MarketState:
    """Recent bars and last prices per symbol, and their freshness."""

    def __init__(
        self, clock: Clock, symbols: list[str], max_data_age_s: float, history: int = HISTORY
    ) -> None:
        self.freshness = FreshnessTracker(clock, max_data_age_s=max_data_age_s, symbols=symbols)
        self.bars: dict[str, deque[Bar]] = {symbol: deque(maxlen=history) for symbol in symbols}
        self.last_prices: dict[str, Decimal] = {}

    def observe(self, bar: Bar) -> None:
        self.bars.setdefault(bar.symbol, deque(maxlen=HISTORY)).append(bar)
        self.last_prices[bar.symbol] = bar.close
        self.freshness.observe(bar)

    def recent(self, symbol: str, count: int) -> tuple[Bar, ...]:
        bars = self.bars.get(symbol, ())
        if count <= 0 or count >= len(bars):
            return tuple(bars)[-count:]
        # From the newest end: a strategy wants a few of the HISTORY bars kept (no copy of them all).
        return tuple(islice(reversed(bars), count))[::-1]


BarSink = Callable[[Bar], object]
GapSink = Callable[[DataGap], Awaitable[None]]


class MarketDataWorker:
    def __init__(
        self,
        source: BarSource,
        state: MarketState,
        clock: Clock,
        *,
        reorder: ReorderBuffer,
        on_bar: list[BarSink],
        on_gap: GapSink,
        heartbeat: Callable[[], None] = lambda: None,
    ) -> None:
        self.source = source
        self.state = state
        self.clock = clock
        self.reorder = reorder
        self.on_bar = on_bar
        self.on_gap = on_gap
        self.heartbeat = heartbeat
        self.bars_seen = 0
        self.source_ended = asyncio.Event()

    async def run(self) -> None:
        async for bar in self.source:
            self.heartbeat()
            self.bars_seen += 1
            for released in self.reorder.push(bar, self.clock.now_ns()):
                await self._release(released)
            for released in self.reorder.poll(self.clock.now_ns()):
                await self._release(released)
        log.info("market_data_ended", bars=self.bars_seen)
        self.source_ended.set()

    async def _release(self, item: Bar | DataGap) -> None:
        if isinstance(item, DataGap):
            log.warning("market_data_gap", symbol=item.symbol, detail=item.describe())
            await self.on_gap(item)
            return
        self.state.observe(item)
        for sink in self.on_bar:
            sink(item)
