"""Synthetic bars: valid, cent-quantized, clock-stamped and deterministic under a seed."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from autoquant.clocks import FakeClock
from autoquant.domain.bars import Bar
from autoquant.domain.values import to_ns
from autoquant.marketdata import SyntheticBars
from tests.marketdata.helpers import clock_sleep


async def collect(
    seed: int, rounds: int, bar_seconds: float = 1.0, symbols: tuple[str, ...] = ("AAPL", "MSFT")
) -> list[Bar]:
    clock = FakeClock()
    source = SyntheticBars(
        symbols, bar_seconds=bar_seconds, seed=seed, clock=clock, sleep=clock_sleep(clock), limit=rounds
    )
    return [bar async for bar in source]


async def test_one_bar_per_symbol_per_period_stamped_with_the_clock() -> None:
    """Each round emits one bar per symbol, closing at the clock's time, bar_seconds long."""
    clock = FakeClock()
    source = SyntheticBars(
        ["AAPL", "BTC/USD"], bar_seconds=0.25, seed=1, clock=clock, sleep=clock_sleep(clock), limit=3
    )
    bars = [bar async for bar in source]
    assert [bar.symbol for bar in bars] == ["AAPL", "BTC/USD"] * 3
    assert bars[-1].close_ns == clock.now_ns()
    assert all(bar.close_ns - to_ns(bar.open_time) == 250_000_000 for bar in bars)
    assert bars[0].close_ns - 1_700_000_000 * 1_000_000_000 == 250_000_000
    assert {bar.source for bar in bars} == {"synthetic"}


async def test_same_seed_same_bars_other_seed_other_bars() -> None:
    """The walk is a function of (seed, symbol): reruns agree, another seed differs."""
    assert await collect(7, 20) == await collect(7, 20)
    assert [b.close for b in await collect(7, 20)] != [b.close for b in await collect(8, 20)]


async def test_a_symbols_walk_does_not_depend_on_the_others() -> None:
    """Adding a symbol does not change another symbol's prices."""
    alone = [b.close for b in await collect(3, 10, symbols=("AAPL",))]
    together = [b.close for b in await collect(3, 10) if b.symbol == "AAPL"]
    assert alone == together


async def test_close_stops_the_stream() -> None:
    """After close() the iterator ends instead of producing more bars."""
    clock = FakeClock()
    source = SyntheticBars(["AAPL"], bar_seconds=1, seed=1, clock=clock, sleep=clock_sleep(clock))
    seen = 0
    async for _ in source:
        seen += 1
        if seen == 5:
            await source.close()
    assert seen == 5


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), bar_seconds=st.sampled_from([0.1, 1.0, 60.0]))
async def test_synthetic_bars_are_always_valid(seed: int, bar_seconds: float) -> None:
    """Every bar is a valid Bar with cent prices, positive, open equal to the previous close."""
    bars = await collect(seed, 200, bar_seconds, symbols=("AAPL",))
    assert len(bars) == 200
    previous = None
    for bar in bars:
        for price in (bar.open, bar.high, bar.low, bar.close):
            assert price == price.quantize(Decimal("0.01")) and price > 0
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        if previous is not None:
            assert bar.open == previous.close
            assert bar.close_time > previous.close_time
        previous = bar


async def test_a_busy_loop_delays_bars_but_leaves_no_hole(clock: FakeClock) -> None:
    """When every sleep overshoots (a busy loop), bars still close exactly bar_seconds apart."""

    async def late_sleep(seconds: float) -> None:
        clock.advance(seconds * 1.7)

    source = SyntheticBars(["AAPL"], bar_seconds=0.1, seed=1, clock=clock, sleep=late_sleep, limit=20)
    closes = [bar.close_ns async for bar in source]
    assert {b - a for a, b in pairwise(closes)} == {100_000_000}


async def test_after_a_long_stall_the_walk_jumps_to_the_present(clock: FakeClock) -> None:
    """A stall far longer than a bar makes the next bar close near now: the hole is real and shows."""
    source = SyntheticBars(["AAPL"], bar_seconds=0.1, seed=1, clock=clock, sleep=clock_sleep(clock), limit=3)
    closes = []
    async for bar in source:
        closes.append(bar.close_ns)
        if len(closes) == 1:
            clock.advance(60)
    assert closes[1] - closes[0] > 50 * 100_000_000
    assert clock.now_ns() - closes[1] < 200_000_000
