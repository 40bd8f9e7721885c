"""The broker contract against the in-process PaperBroker, with its pump running in real time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.brokers.paper import PaperBroker, PaperExchange
from autoquant.brokers.port import Broker
from autoquant.config import PaperSettings
from autoquant.domain.clock import SystemClock
from tests.brokers.contract import BrokerContract, BrokerHarness


class TestPaperBrokerContract(BrokerContract):
    @pytest.fixture
    async def harness(self, tmp_path: Path) -> AsyncIterator[BrokerHarness]:
        settings = PaperSettings(
            state_path=tmp_path / "paper.db",
            latency_s=0.02,
            slippage_bps=Decimal(5),
            fee_bps=Decimal(3),
            partial_fill_probability=0.5,
        )
        exchange = PaperExchange(settings, SystemClock(), ["AAPL", "MSFT"])
        broker = PaperBroker(exchange)
        pump = asyncio.create_task(broker.run())

        async def set_price(symbol: str, price: Decimal) -> None:
            exchange.set_price(symbol, price)

        yield BrokerHarness(broker=broker, set_price=set_price, starting_cash=settings.starting_cash)
        await broker.close()
        await asyncio.wait_for(pump, timeout=5)
        exchange.close()


def test_paper_broker_satisfies_the_broker_protocol(tmp_path: Path) -> None:
    """PaperBroker is a Broker (runtime-checkable protocol)."""
    exchange = PaperExchange(PaperSettings(state_path=tmp_path / "p.db"), SystemClock(), ["AAPL"])
    try:
        assert isinstance(PaperBroker(exchange), Broker)
    finally:
        exchange.close()
