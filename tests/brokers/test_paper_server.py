"""The paper server speaks Alpaca: alpaca-py's own models parse every answer, errors have Alpaca's
shape and codes, bad input is refused without taking the server down, the stream protocol is
TradingStream's, and the server runs as a process that prints where it listens."""

from __future__ import annotations

import asyncio
import json
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from autoquant.runtime.paper_server import PaperServer
from tests.brokers.server_harness import TEST_KEYS, paper_server, paper_server_process, wait_until

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="websockets.legacy is deprecated", category=DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.trading.client import TradingClient
    from alpaca.trading.models import Clock, Order, Position, TradeAccount, TradeUpdate
    from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest

HEADERS = {"APCA-API-KEY-ID": TEST_KEYS.key_id, "APCA-API-SECRET-KEY": TEST_KEYS.secret_key}


def http(server: PaperServer, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, headers=HEADERS if headers is None else headers, timeout=5)


def order_body(**changes: Any) -> dict[str, Any]:
    body = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
    return {**body, **changes}


async def test_alpaca_py_models_parse_every_answer(tmp_path: Path) -> None:
    """The real TradingClient (parsing into its pydantic models) works against the server unchanged."""
    async with paper_server(tmp_path) as server:
        server.exchange.set_price("AAPL", Decimal("100"))
        client = TradingClient(TEST_KEYS.key_id, TEST_KEYS.secret_key, url_override=server.url)
        try:
            account = await asyncio.to_thread(client.get_account)
            assert isinstance(account, TradeAccount)
            assert Decimal(str(account.cash)) == Decimal(100_000)
            clock = await asyncio.to_thread(client.get_clock)
            assert isinstance(clock, Clock)
            assert clock.next_open > clock.timestamp  # the NYSE's clock (test_paper_server_routes)
            market = MarketOrderRequest(
                symbol="AAPL", qty=2, side="buy", time_in_force="day", client_order_id="m-1"
            )
            order = await asyncio.to_thread(client.submit_order, market)
            assert isinstance(order, Order)
            assert order.client_order_id == "m-1"

            async def filled() -> bool:
                found = await asyncio.to_thread(client.get_order_by_client_id, "m-1")
                assert isinstance(found, Order)
                return str(found.status.value) == "filled"

            await wait_until(filled, "the market order to fill")
            working = LimitOrderRequest(
                symbol="AAPL", qty=1, side="buy", time_in_force="gtc", limit_price=50, client_order_id="l-1"
            )
            limit = await asyncio.to_thread(client.submit_order, working)
            assert isinstance(limit, Order)
            by_id = await asyncio.to_thread(client.get_order_by_id, limit.id)
            assert isinstance(by_id, Order)
            assert Decimal(str(by_id.limit_price)) == 50
            every = await asyncio.to_thread(
                client.get_orders, GetOrdersRequest(status="all", symbols=["AAPL"])
            )
            assert isinstance(every, list)
            assert {o.client_order_id for o in every} == {"m-1", "l-1"}
            positions = await asyncio.to_thread(client.get_all_positions)
            assert isinstance(positions, list)
            assert [Decimal(p.qty) for p in positions] == [2]
            single = await asyncio.to_thread(client.get_open_position, "AAPL")
            assert isinstance(single, Position)
            assert single.symbol == "AAPL"
            canceled = await asyncio.to_thread(client.cancel_orders)
            assert isinstance(canceled, list)
            assert [(str(c.id), c.status) for c in canceled] == [(str(limit.id), 200)]
        finally:
            client._session.close()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (order_body(qty="-1"), "qty"),
        (order_body(side="Buy"), "side"),
        (order_body(type="limit"), "limit_price"),
        (order_body(symbol="ZZZZ"), "unknown symbol"),
        (order_body(qty="lots"), "qty"),
        (order_body(notional="10"), "notional"),
        ("{not json", "JSON"),
        ("[1, 2]", "object"),
    ],
)
async def test_invalid_orders_get_alpaca_422_and_the_server_keeps_serving(
    tmp_path: Path, body: dict[str, Any] | str, fragment: str
) -> None:
    """Each invalid order is refused with 422 {"code", "message"} naming the problem; the server lives on."""
    async with paper_server(tmp_path) as server, http(server) as client:
        content = body if isinstance(body, str) else json.dumps(body)
        response = await client.post("/v2/orders", content=content)
        assert response.status_code == 422
        error = response.json()
        assert isinstance(error["code"], int)
        assert fragment in error["message"]
        assert (await client.get("/v2/account")).status_code == 200
        assert server.exchange.list_orders(status="all") == []


async def test_duplicate_client_order_id_is_422_40010001(tmp_path: Path) -> None:
    """A second order with the same client_order_id gets Alpaca's duplicate code and creates nothing."""
    async with paper_server(tmp_path) as server, http(server) as client:
        body = order_body(type="limit", limit_price="1", client_order_id="same")
        assert (await client.post("/v2/orders", json=body)).status_code == 200
        again = await client.post("/v2/orders", json=body)
        assert again.status_code == 422
        assert again.json()["code"] == 40010001
        assert len(server.exchange.list_orders(status="all")) == 1


async def test_insufficient_buying_power_is_403_40310000(tmp_path: Path) -> None:
    """A buy beyond the cash is refused with 403 and Alpaca's buying-power code."""
    async with paper_server(tmp_path) as server, http(server) as client:
        server.exchange.set_price("AAPL", Decimal(100))
        response = await client.post("/v2/orders", json=order_body(qty="5000"))
        assert response.status_code == 403
        assert response.json()["code"] == 40310000


async def test_unknown_orders_are_404_40410000(tmp_path: Path) -> None:
    """Lookups and cancels of unknown orders answer 404 with Alpaca's not-found code."""
    async with paper_server(tmp_path) as server, http(server) as client:
        for response in (
            await client.get("/v2/orders/00000000-0000-4000-8000-000000000000"),
            await client.get("/v2/orders:by_client_order_id", params={"client_order_id": "nobody"}),
            await client.delete("/v2/orders/00000000-0000-4000-8000-000000000000"),
        ):
            assert response.status_code == 404
            assert response.json()["code"] == 40410000


async def test_cancel_answers_204_and_a_final_order_422(tmp_path: Path) -> None:
    """DELETE of a working order is 204 with no body; cancelling it again is refused with 422."""
    async with paper_server(tmp_path) as server, http(server) as client:
        created = (await client.post("/v2/orders", json=order_body(type="limit", limit_price="1"))).json()
        first = await client.delete(f"/v2/orders/{created['id']}")
        assert (first.status_code, first.content) == (204, b"")
        assert (await client.delete(f"/v2/orders/{created['id']}")).status_code == 422


@pytest.mark.parametrize(
    "headers",
    [{}, {"APCA-API-KEY-ID": TEST_KEYS.key_id, "APCA-API-SECRET-KEY": "wrong"}, {"APCA-API-KEY-ID": "x"}],
)
async def test_wrong_keys_are_401_and_the_server_keeps_serving(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    """Missing or wrong APCA keys get 401 in Alpaca's shape; the right keys still work afterwards."""
    async with paper_server(tmp_path) as server:
        async with http(server, headers) as stranger:
            refused = await stranger.get("/v2/account")
            assert refused.status_code == 401
            assert refused.json()["code"] == 40110000
            assert (await stranger.post("/v2/orders", json=order_body())).status_code == 401
        async with http(server) as client:
            assert (await client.get("/v2/account")).status_code == 200
        assert server.exchange.list_orders(status="all") == []


async def test_bad_query_parameters_are_422(tmp_path: Path) -> None:
    """Unparseable list parameters (status, after, limit) are refused with 422, not a 500."""
    async with paper_server(tmp_path) as server, http(server) as client:
        for params in ({"status": "sideways"}, {"after": "yesterday"}, {"limit": "many"}):
            response = await client.get("/v2/orders", params=params)
            assert response.status_code == 422, params
            assert "code" in response.json()


async def test_fill_activities_page_with_page_token(tmp_path: Path) -> None:
    """FILL activities list each execution once, oldest first with direction=asc, across pages."""
    async with paper_server(tmp_path) as server, http(server) as client:
        server.exchange.set_price("AAPL", Decimal(10))
        for n in range(3):
            await client.post("/v2/orders", json=order_body(client_order_id=f"f-{n}"))

        async def three_fills() -> bool:
            return len(server.exchange.fills()) == 3

        await wait_until(three_fills, "three fills")
        first = (
            await client.get("/v2/account/activities/FILL", params={"direction": "asc", "page_size": 2})
        ).json()
        rest = (
            await client.get(
                "/v2/account/activities",
                params={
                    "activity_types": "FILL",
                    "direction": "asc",
                    "page_size": 2,
                    "page_token": first[-1]["id"],
                },
            )
        ).json()
        assert [a["id"] for a in first + rest] == [f.execution_id for f in server.exchange.fills()]
        assert {a["type"] for a in first + rest} == {"fill"}


async def test_trade_updates_speak_trading_streams_protocol(tmp_path: Path) -> None:
    """authenticate → authorized, listen → listening, then binary frames alpaca-py's TradeUpdate parses."""
    async with paper_server(tmp_path) as server, http(server) as client:
        server.exchange.set_price("AAPL", Decimal(100))
        async with connect(server.stream_url) as ws:
            auth = {
                "action": "authenticate",
                "data": {"key_id": TEST_KEYS.key_id, "secret_key": TEST_KEYS.secret_key},
            }
            await ws.send(json.dumps(auth))
            assert json.loads(await ws.recv())["data"]["status"] == "authorized"
            await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
            assert json.loads(await ws.recv()) == {
                "stream": "listening",
                "data": {"streams": ["trade_updates"]},
            }
            await client.post("/v2/orders", json=order_body(client_order_id="s-1"))
            events: list[TradeUpdate] = []
            while not events or events[-1].event != "fill":
                frame = await asyncio.wait_for(ws.recv(), 5)
                assert isinstance(frame, bytes)
                message = json.loads(frame)
                assert message["stream"] == "trade_updates"
                events.append(TradeUpdate(**message["data"]))
        assert [e.event for e in events] == ["new", "fill"]
        assert events[-1].execution_id is not None
        assert events[-1].position_qty == 1


async def test_trade_updates_refuse_wrong_keys(tmp_path: Path) -> None:
    """A stream client with wrong keys is told "unauthorized" and disconnected."""
    async with paper_server(tmp_path) as server, connect(server.stream_url) as ws:
        await ws.send(json.dumps({"action": "authenticate", "data": {"key_id": "x", "secret_key": "y"}}))
        assert json.loads(await ws.recv())["data"]["status"] == "unauthorized"
        await asyncio.wait_for(ws.wait_closed(), 5)


@pytest.mark.slow
def test_server_runs_as_a_process_and_prints_where_it_listens(tmp_path: Path) -> None:
    """`python -m autoquant.runtime.paper_server --port 0` prints its URL, serves, and exits 0 on SIGTERM."""
    with paper_server_process(tmp_path) as (process, url):
        response = httpx.get(f"{url}/v2/account", headers=HEADERS, timeout=5)
        assert response.status_code == 200
        process.terminate()
        assert process.wait(timeout=15) == 0


async def test_state_survives_a_server_restart(tmp_path: Path) -> None:
    """Orders accepted by one server are there when a new server opens the same state file."""
    async with paper_server(tmp_path) as server, http(server) as client:
        await client.post(
            "/v2/orders", json=order_body(type="limit", limit_price="1", client_order_id="keep")
        )
    async with paper_server(tmp_path) as server, http(server) as client:
        response = await client.get("/v2/orders:by_client_order_id", params={"client_order_id": "keep"})
        assert response.status_code == 200
        assert response.json()["status"] == "new"


def test_alpaca_py_error_type_carries_the_status() -> None:
    """alpaca-py's APIError exposes our JSON's code (sanity check of the shape the adapter reads)."""
    error = APIError(json.dumps({"code": 40410000, "message": "order not found"}))  # type: ignore[no-untyped-call]
    assert error.code == 40410000
