"""Freshness: the age of each symbol's newest bar by the clock, inclusive of the limit."""

from __future__ import annotations

from autoquant.clocks import FakeClock
from autoquant.marketdata import FreshnessTracker
from tests.marketdata.helpers import bar_at


def test_age_and_freshness_at_under_and_over_the_limit() -> None:
    """Exactly max_data_age_s old is fresh, a nanosecond more is stale."""
    bar = bar_at(0)
    clock = FakeClock(bar.close_ns)
    tracker = FreshnessTracker(clock, max_data_age_s=30, symbols=["AAPL"])
    tracker.observe(bar)
    clock.advance(29.999)
    assert tracker.is_fresh("AAPL")
    clock.set(bar.close_time)
    clock.advance(30)
    assert tracker.age_ns("AAPL") == 30_000_000_000
    assert tracker.is_fresh("AAPL")
    clock.advance(1e-9)
    assert not tracker.is_fresh("AAPL")
    assert tracker.stale_symbols() == ["AAPL"]


def test_unseen_symbol_has_no_age_and_is_not_fresh() -> None:
    """A configured symbol without any bar is stale and absent from ages_ns."""
    tracker = FreshnessTracker(FakeClock(), max_data_age_s=30, symbols=["MSFT"])
    assert tracker.age_ns("MSFT") is None
    assert not tracker.is_fresh("MSFT")
    assert tracker.ages_ns() == {}
    assert tracker.stale_symbols() == ["MSFT"]


def test_older_bar_does_not_make_data_staler() -> None:
    """Observing an older bar after a newer one keeps the newer time; ages never go negative."""
    clock = FakeClock(bar_at(0).close_ns)
    tracker = FreshnessTracker(clock, max_data_age_s=30)
    tracker.observe(bar_at(5))
    tracker.observe(bar_at(1))
    assert tracker.last_bar_ns("AAPL") == bar_at(5).close_ns
    assert tracker.ages_ns() == {"AAPL": 0}
