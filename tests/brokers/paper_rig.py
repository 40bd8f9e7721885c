"""Helpers of the paper exchange tests: the factory type of conftest's ``make`` and daily bars."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from autoquant.brokers.paper.engine import PaperExchange
from autoquant.domain.bars import Bar

ExchangeFactory = Callable[..., PaperExchange]
#: Monday 2026-03-02, a trading day (EST).
DAY0 = datetime(2026, 3, 2, tzinfo=UTC)


def daily_bar(day: int, o: str, h: str, low: str, c: str) -> Bar:
    """An AAPL bar for the UTC day ``day`` days after DAY0."""
    start = DAY0 + timedelta(days=day)
    return Bar(
        symbol="AAPL",
        open_time=start,
        close_time=start + timedelta(days=1),
        open=Decimal(o),
        high=Decimal(h),
        low=Decimal(low),
        close=Decimal(c),
        volume=Decimal(1),
        source="test",
    )
