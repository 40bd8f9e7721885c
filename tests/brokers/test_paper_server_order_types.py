"""Every order type through the real alpaca-py ``TradingClient`` against the paper server: its request
models are accepted, its ``Order`` model parses every answer (trail, hwm, notional with qty null), a
trailing stop's trail is replaced with ``ReplaceOrderRequest(trail=…)``, and Alpaca's refusals come
back as ``APIError`` with Alpaca's code."""

from __future__ import annotations

import asyncio
import json
import warnings
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.domain.values import TimeInForce
from tests.brokers.contract_order_types import auction_refused_now
from tests.brokers.server_harness import TEST_KEYS, paper_server, wait_until

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="websockets.legacy is deprecated", category=DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderType
    from alpaca.trading.models import Order
    from alpaca.trading.requests import (
        LimitOrderRequest,
        MarketOrderRequest,
        OrderRequest,
        ReplaceOrderRequest,
        StopLimitOrderRequest,
        StopOrderRequest,
        TrailingStopOrderRequest,
    )

D = Decimal


async def _submit(client: TradingClient, request: OrderRequest) -> Order:
    order = await asyncio.to_thread(client.submit_order, request)
    assert isinstance(order, Order)
    return order


async def test_trading_client_places_every_order_type(tmp_path: Path) -> None:
    """Market, limit, stop, stop-limit, trailing (price and percent), notional and fractional orders,
    sent with alpaca-py's own request models, are accepted and parsed back with their terms."""
    async with paper_server(tmp_path) as server:
        server.exchange.set_price("AAPL", D(100))
        client = TradingClient(TEST_KEYS.key_id, TEST_KEYS.secret_key, url_override=server.url)
        common = {"symbol": "AAPL", "side": "buy", "time_in_force": "gtc"}
        stop = await _submit(client, StopOrderRequest(**common, qty=1, stop_price=110))
        assert (stop.type, D(str(stop.stop_price))) == (OrderType.STOP, D(110))
        stop_limit = await _submit(
            client, StopLimitOrderRequest(**common, qty=1, stop_price=110, limit_price=111)
        )
        assert (stop_limit.type, D(str(stop_limit.limit_price))) == (OrderType.STOP_LIMIT, D(111))
        limit = await _submit(client, LimitOrderRequest(**common, qty=1, limit_price=90, extended_hours=True))
        assert limit.extended_hours is True
        by_price = await _submit(client, TrailingStopOrderRequest(**common, qty=1, trail_price=2.5))
        assert (by_price.type, by_price.trail_price, by_price.hwm) == (OrderType.TRAILING_STOP, "2.5", "100")
        assert D(str(by_price.stop_price)) == D("102.50")
        by_percent = await _submit(client, TrailingStopOrderRequest(**common, qty=1, trail_percent=1))
        assert (D(str(by_percent.trail_percent)), D(str(by_percent.stop_price))) == (D(1), D(101))
        day = {"symbol": "AAPL", "side": "buy", "time_in_force": "day"}
        notional = await _submit(client, MarketOrderRequest(**day, notional=150))
        assert (notional.qty, notional.notional) == (None, "150")
        fractional = await _submit(client, MarketOrderRequest(**day, qty=0.25))
        assert fractional.qty == "0.25"

        async def both_filled() -> bool:
            found = [await asyncio.to_thread(client.get_order_by_id, o.id) for o in (notional, fractional)]
            return all(isinstance(o, Order) and o.status.value == "filled" for o in found)

        await wait_until(both_filled, "the notional and fractional buys to fill")
        done = await asyncio.to_thread(client.get_order_by_id, notional.id)
        assert isinstance(done, Order)
        assert (done.qty, D(str(done.filled_qty)) * D(str(done.filled_avg_price)) <= 150) == (None, True)


async def test_trading_client_replaces_a_trail_and_keeps_the_mark(tmp_path: Path) -> None:
    """ReplaceOrderRequest(trail=…) on a trailing stop makes a new order with the new trail, the old
    mark (105, reached before the replace) and the stop that follows from both."""
    async with paper_server(tmp_path) as server:
        server.exchange.set_price("AAPL", D(100))
        client = TradingClient(TEST_KEYS.key_id, TEST_KEYS.secret_key, url_override=server.url)
        sell_side = {"symbol": "AAPL", "time_in_force": "day"}
        await _submit(client, MarketOrderRequest(**sell_side, side="buy", qty=3))
        await wait_until(lambda: _has_position(client), "the buy to fill")
        trailing = await _submit(
            client, TrailingStopOrderRequest(**sell_side, side="sell", qty=3, trail_price=2)
        )
        server.exchange.set_price("AAPL", D(105))
        replaced = await asyncio.to_thread(
            client.replace_order_by_id, trailing.id, ReplaceOrderRequest(trail=4)
        )
        assert isinstance(replaced, Order)
        assert (replaced.replaces, D(str(replaced.trail_price)), replaced.hwm) == (trailing.id, D(4), "105")
        assert D(str(replaced.stop_price)) == D(101)
        old = await asyncio.to_thread(client.get_order_by_id, trailing.id)
        assert isinstance(old, Order)
        assert (old.status.value, old.replaced_by) == ("replaced", replaced.id)


async def _has_position(client: TradingClient) -> bool:
    return bool(await asyncio.to_thread(client.get_all_positions))


async def test_trading_client_meets_alpacas_refusals(tmp_path: Path) -> None:
    """Orders Alpaca refuses for their terms answer 422 with code 42210000 and a message naming the
    rule; opg and cls are refused or accepted by Alpaca's window for the current hour."""
    async with paper_server(tmp_path) as server:
        server.exchange.set_price("AAPL", D(100))
        client = TradingClient(TEST_KEYS.key_id, TEST_KEYS.secret_key, url_override=server.url)
        refusals = {
            "must be day or gtc": TrailingStopOrderRequest(
                symbol="AAPL", side="sell", qty=1, time_in_force="ioc", trail_price=1
            ),
            "notional orders must be day": MarketOrderRequest(
                symbol="AAPL", side="buy", notional=10, time_in_force="gtc"
            ),
            "fractional orders must be market": LimitOrderRequest(
                symbol="AAPL", side="buy", qty=0.5, time_in_force="day", limit_price=90
            ),
            "extended hours orders must be limit": MarketOrderRequest(
                symbol="AAPL", side="buy", qty=1, time_in_force="day", extended_hours=True
            ),
        }
        for words, request in refusals.items():
            with pytest.raises(APIError) as refused:
                await asyncio.to_thread(client.submit_order, request)
            assert (refused.value.status_code, refused.value.code) == (422, 42210000)
            assert words in json.loads(str(refused.value))["message"]
        for tif in (TimeInForce.OPG, TimeInForce.CLS):
            request = MarketOrderRequest(symbol="AAPL", side="buy", qty=1, time_in_force=tif.value)
            if auction_refused_now(tif):
                with pytest.raises(APIError) as refused:
                    await asyncio.to_thread(client.submit_order, request)
                assert refused.value.status_code == 422
            else:
                assert (await _submit(client, request)).time_in_force.value == tif.value
