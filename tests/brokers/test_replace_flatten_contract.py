"""Replace and close-all, as the ``Broker`` port promises them, against both implementations: the in-process
paper broker and the Alpaca adapter over loopback to the paper server (``PATCH /v2/orders/{id}``,
``DELETE /v2/positions?cancel_orders=true``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from autoquant.brokers.paper import PaperBroker, PaperExchange
from autoquant.clocks import SystemClock
from autoquant.domain.broker import OrderRequest
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce
from autoquant.errors import BrokerRejected
from autoquant.runtime.config import PaperSettings
from tests.brokers.contract import BrokerHarness, filled, limit, market, new_id, recording
from tests.brokers.server_harness import alpaca_broker_for, paper_server

D = Decimal


@pytest.fixture(params=["paper", "alpaca"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BrokerHarness]:
    paper: dict[str, Any] = {
        "latency_s": 0.02,
        "slippage_bps": D(0),
        "fee_bps": D(0),
        "partial_fill_probability": 0.0,
    }
    if request.param == "paper":
        exchange = PaperExchange(
            PaperSettings(state_path=tmp_path / "paper.db", **paper), SystemClock(), ["AAPL", "MSFT"]
        )
        broker = PaperBroker(exchange)
        pump = asyncio.create_task(broker.run())

        async def set_price(symbol: str, price: Decimal) -> None:
            exchange.set_price(symbol, price)

        yield BrokerHarness(broker=broker, set_price=set_price, starting_cash=exchange.settings.starting_cash)
        await broker.close()
        await pump
        exchange.close()
        return
    async with paper_server(tmp_path, **paper) as server:
        alpaca = alpaca_broker_for(server)

        async def set_server_price(symbol: str, price: Decimal) -> None:
            server.exchange.set_price(symbol, price)

        async def stream_ready() -> None:
            for stream in alpaca.open_streams:
                await stream.listening()

        yield BrokerHarness(
            broker=alpaca,
            set_price=set_server_price,
            starting_cash=server.config.paper.starting_cash,
            stream_ready=stream_ready,
        )
        await alpaca.close()


async def test_replace_makes_a_linked_new_order_and_ends_the_old_one(harness: BrokerHarness) -> None:
    """replace: the new order (our id, new terms) names the old; the old is REPLACED, on the stream too."""
    await harness.set_price("AAPL", D(100))
    old_request = limit("AAPL", new_id("old"), "5", "90")
    async with recording(harness) as recorder:
        old = await harness.broker.submit(old_request)
        replacement = limit("AAPL", new_id("new"), "3", "91")
        new = await harness.broker.replace(old.broker_order_id, replacement)
        assert (new.client_order_id, new.qty, new.limit_price, new.replaces) == (
            replacement.client_order_id,
            D(3),
            D(91),
            old.broker_order_id,
        )
        await recorder.wait_for(old_request.client_order_id, OrderEventKind.REPLACED)
    looked_up = await harness.broker.get_by_client_order_id(old_request.client_order_id)
    assert looked_up is not None and looked_up.status is OrderStatus.REPLACED
    assert looked_up.replaced_by == new.broker_order_id
    open_ids = {o.client_order_id for o in await harness.broker.list_orders(open_only=True)}
    assert open_ids == {replacement.client_order_id}


async def test_a_trailing_stops_trail_is_changed_by_a_replace(harness: BrokerHarness) -> None:
    """replace of a $2 trailing sell stop with a $3 trail: the new order trails by $3 (the adapter sends
    Alpaca's one ``trail`` field), the old one ends REPLACED."""
    await harness.set_price("AAPL", D(100))
    async with recording(harness) as recorder:
        await filled(harness, recorder, market("AAPL", new_id("buy"), "5"))
        old_request = trailing_sell("AAPL", new_id("trail"), "5", trail_price=D(2))
        old = await harness.broker.submit(old_request)
        new = await harness.broker.replace(
            old.broker_order_id, trailing_sell("AAPL", new_id("wider"), "5", trail_price=D(3))
        )
        assert (new.order_type, new.trail_price, new.trail_percent) == (OrderType.TRAILING_STOP, D(3), None)
        await recorder.wait_for(old_request.client_order_id, OrderEventKind.REPLACED)
    looked_up = await harness.broker.get_by_client_order_id(new.client_order_id)
    assert looked_up is not None and looked_up.trail_price == D(3)


def trailing_sell(symbol: str, coid: str, qty: str, *, trail_price: Decimal) -> OrderRequest:
    return OrderRequest(
        client_order_id=coid,
        symbol=symbol,
        side=Side.SELL,
        qty=D(qty),
        order_type=OrderType.TRAILING_STOP,
        trail_price=trail_price,
        time_in_force=TimeInForce.GTC,
    )


async def test_replace_of_a_filled_order_is_refused(harness: BrokerHarness) -> None:
    """A final order cannot be replaced: BrokerRejected, and no new order exists under the new id."""
    await harness.set_price("AAPL", D(100))
    async with recording(harness) as recorder:
        await filled(harness, recorder, market("AAPL", new_id("done"), "1"))
    done = (await harness.broker.list_orders(open_only=False))[-1]
    replacement = market("AAPL", new_id("late"), "2")
    with pytest.raises(BrokerRejected):
        await harness.broker.replace(done.broker_order_id, replacement)
    assert await harness.broker.get_by_client_order_id(replacement.client_order_id) is None


async def test_close_all_positions_cancels_orders_and_closes_every_position(harness: BrokerHarness) -> None:
    """close_all_positions: open orders canceled, one market closing order per position, then flat."""
    await harness.set_price("AAPL", D(100))
    await harness.set_price("MSFT", D(50))
    resting = limit("AAPL", new_id("rest"), "1", "80")
    async with recording(harness) as recorder:
        await filled(harness, recorder, market("AAPL", new_id("a"), "4"))
        await filled(harness, recorder, market("MSFT", new_id("m"), "2"))
        await harness.broker.submit(resting)
        result = await harness.broker.close_all_positions(cancel_orders=True)
        assert result.failed == {}
        closing = sorted((o.symbol, o.side, o.qty, o.order_type) for o in result.orders)
        assert closing == [
            ("AAPL", Side.SELL, D(4), OrderType.MARKET),
            ("MSFT", Side.SELL, D(2), OrderType.MARKET),
        ]
        await recorder.wait_for(resting.client_order_id, OrderEventKind.CANCELED)
        for order in result.orders:
            await recorder.wait_for(order.client_order_id, OrderEventKind.FILL)

    async def flat() -> bool:
        return await harness.broker.positions() == []

    await harness.wait_until(flat, "every position closed")
    assert await harness.broker.list_orders(open_only=True) == []
