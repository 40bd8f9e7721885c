"""Fixtures of the broker tests: a factory of paper exchanges on the test's fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from autoquant.brokers.paper.engine import PaperExchange
from autoquant.clocks import FakeClock
from autoquant.runtime.config import PaperSettings
from tests.brokers.paper_rig import ExchangeFactory


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock) -> Iterator[ExchangeFactory]:
    """``make(**settings)``: a PaperExchange on ``clock`` trading AAPL and BTC/USD, state in tmp_path
    (reopened by a second call), with no latency, slippage, fee or partial fills unless overridden."""
    opened: list[PaperExchange] = []

    def factory(**overrides: Any) -> PaperExchange:
        values: dict[str, Any] = {
            "state_path": tmp_path / "paper.db",
            "latency_s": 0.0,
            "slippage_bps": Decimal(0),
            "fee_bps": Decimal(0),
            "partial_fill_probability": 0.0,
        } | overrides
        exchange = PaperExchange(PaperSettings(**values), clock, ("AAPL", "BTC/USD"))
        opened.append(exchange)
        return exchange

    yield factory
    for exchange in opened:
        exchange.close()
