"""The broker contract against the in-process PaperBroker, with its pump running in real time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.brokers.paper import PaperBroker, PaperExchange
from autoquant.brokers.port import Broker
from autoquant.clocks import FakeClock, SystemClock
from autoquant.domain.broker import OrderRequest
from autoquant.domain.orders import OrderEventKind
from autoquant.domain.values import Side
from autoquant.runtime.config import PaperSettings
from tests.brokers.contract import BrokerContract, BrokerHarness
from tests.brokers.contract_order_types import OrderTypesContract


class TestPaperBrokerContract(BrokerContract, OrderTypesContract):
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


async def test_update_iterators_subscribe_when_created_and_end_when_the_broker_closes(tmp_path: Path) -> None:
    """updates() sees events from its creation on, before the first __anext__, and ends on close()."""
    exchange = PaperExchange(PaperSettings(state_path=tmp_path / "p.db"), SystemClock(), ["AAPL"])
    broker = PaperBroker(exchange)
    updates = broker.updates()
    state = await broker.submit(
        OrderRequest(client_order_id="c1", symbol="AAPL", side=Side.BUY, qty=Decimal(1))
    )
    first = await asyncio.wait_for(anext(updates), timeout=5)
    assert (first.kind, first.order.broker_order_id) == (OrderEventKind.ACCEPTED, state.broker_order_id)
    waiting = asyncio.create_task(anext(updates, None))
    await broker.close()
    assert await asyncio.wait_for(waiting, timeout=5) is None
    exchange.close()


async def test_the_pump_fills_when_a_moved_clock_is_poked(tmp_path: Path) -> None:
    """With a fake clock, advancing it past the latency and poking the pump delivers the fill."""
    clock = FakeClock()
    settings = PaperSettings(state_path=tmp_path / "p.db", latency_s=30, partial_fill_probability=0)
    exchange = PaperExchange(settings, clock, ["AAPL"])
    exchange.set_price("AAPL", Decimal(10))
    broker = PaperBroker(exchange)
    pump = asyncio.create_task(broker.run())
    async with broker.updates() as updates:
        await broker.submit(OrderRequest(client_order_id="c1", symbol="AAPL", side=Side.BUY, qty=Decimal(1)))
        assert (await asyncio.wait_for(anext(updates), timeout=5)).kind is OrderEventKind.ACCEPTED
        clock.advance(30)
        broker.poke()
        fill = await asyncio.wait_for(anext(updates), timeout=5)
    assert fill.kind is OrderEventKind.FILL
    assert exchange.position_qty("AAPL") == Decimal(1)
    await broker.close()
    await asyncio.wait_for(pump, timeout=5)
    exchange.close()
