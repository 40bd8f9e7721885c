"""The broker contract against AlpacaBroker (our httpx transport and stream client), over loopback to the
paper server (REST and the trade_updates websocket)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.brokers.alpaca import AlpacaBroker, stream_url_for
from autoquant.brokers.port import Broker
from autoquant.runtime.config import AlpacaBrokerSettings
from tests.brokers.contract import BrokerContract, BrokerHarness
from tests.brokers.contract_order_types import OrderTypesContract
from tests.brokers.server_harness import TEST_KEYS, alpaca_broker_for, paper_server


class TestAlpacaBrokerContract(BrokerContract, OrderTypesContract):
    @pytest.fixture
    async def harness(self, tmp_path: Path) -> AsyncIterator[BrokerHarness]:
        async with paper_server(
            tmp_path, slippage_bps=Decimal(5), fee_bps=Decimal(0), partial_fill_probability=0.5
        ) as server:
            broker = alpaca_broker_for(server)

            async def set_price(symbol: str, price: Decimal) -> None:
                server.exchange.set_price(symbol, price)

            async def stream_ready() -> None:
                for stream in broker.open_streams:
                    await stream.listening()

            yield BrokerHarness(
                broker=broker,
                set_price=set_price,
                starting_cash=server.config.paper.starting_cash,
                stream_ready=stream_ready,
            )
            await broker.close()


def test_alpaca_broker_satisfies_the_broker_protocol() -> None:
    """AlpacaBroker is a Broker (structurally), without touching the network."""
    broker = AlpacaBroker(AlpacaBrokerSettings(url="http://127.0.0.1:9"), TEST_KEYS)
    assert isinstance(broker, Broker)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (AlpacaBrokerSettings(url="http://127.0.0.1:8123"), "ws://127.0.0.1:8123/stream"),
        (AlpacaBrokerSettings(url="https://example.test/base"), "wss://example.test/stream"),
        (AlpacaBrokerSettings(url="http://h:1", stream_url="ws://other:2/x"), "ws://other:2/x"),
        (AlpacaBrokerSettings(paper=True), "wss://paper-api.alpaca.markets/stream"),
        (AlpacaBrokerSettings(paper=False), "wss://api.alpaca.markets/stream"),
    ],
)
def test_stream_url_follows_the_rest_url(settings: AlpacaBrokerSettings, expected: str) -> None:
    """The trade_updates URL is stream_url, else the REST host with ws scheme and /stream, else Alpaca's."""
    assert stream_url_for(settings) == expected
