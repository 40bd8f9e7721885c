"""Every paper-server answer, REST and both streams, validated against Alpaca's published OpenAPI
descriptions (``tests/brokers/spec``): a session that walks every route a trading client uses, with
the errors it can meet, and checks each response's status and body against the spec's schema."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from autoquant.brokers.paper.alpaca_json import asset_id
from autoquant.domain.bars import Bar
from autoquant.runtime.paper_server import PaperServer
from tests.brokers.server_harness import TEST_KEYS, paper_server, wait_until
from tests.brokers.spec_check import SpecChecker, problems, stream_bar_schema, trade_update_schema

HEADERS = {"APCA-API-KEY-ID": TEST_KEYS.key_id, "APCA-API-SECRET-KEY": TEST_KEYS.secret_key}
MARKET_DATA = "urn:alpaca:market-data-api"

#: The operations the session must have met, each with the status it must have answered.
REQUIRED = {
    ("GET", "/v2/account", 200),
    ("GET", "/v2/clock", 200),
    ("GET", "/v2/calendar", 200),
    ("GET", "/v2/assets", 200),
    ("GET", "/v2/assets/{symbol_or_asset_id}", 200),
    ("GET", "/v2/assets/{symbol_or_asset_id}", 404),
    ("GET", "/v2/account/configurations", 200),
    ("PATCH", "/v2/account/configurations", 200),
    ("PATCH", "/v2/account/configurations", 422),
    ("POST", "/v2/orders", 200),
    ("POST", "/v2/orders", 403),
    ("POST", "/v2/orders", 422),
    ("GET", "/v2/orders", 200),
    ("GET", "/v2/orders/{order_id}", 200),
    ("GET", "/v2/orders/{order_id}", 404),
    ("GET", "/v2/orders:by_client_order_id", 200),
    ("PATCH", "/v2/orders/{order_id}", 200),
    ("PATCH", "/v2/orders/{order_id}", 422),
    ("DELETE", "/v2/orders/{order_id}", 204),
    ("DELETE", "/v2/orders/{order_id}", 422),
    ("DELETE", "/v2/orders", 207),
    ("GET", "/v2/positions", 200),
    ("GET", "/v2/positions/{symbol_or_asset_id}", 200),
    ("GET", "/v2/positions/{symbol_or_asset_id}", 404),
    ("DELETE", "/v2/positions/{symbol_or_asset_id}", 200),
    ("DELETE", "/v2/positions", 207),
    ("GET", "/v2/account/portfolio/history", 200),
    ("GET", "/v2/account/activities", 200),
    ("GET", "/v2/account/activities/{activity_type}", 200),
    ("GET", "/v2/stocks/bars", 200),
    ("GET", "/v2/stocks/bars", 400),
    ("GET", "/v2/stocks/{symbol}/bars", 200),
    ("GET", "/v1beta3/crypto/{loc}/bars", 200),
}


def order_body(**changes: Any) -> dict[str, Any]:
    body = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
    return {k: v for k, v in {**body, **changes}.items() if v is not None}


class Recorder:
    """An httpx response hook that checks every answer against the spec and keeps the problems."""

    def __init__(self) -> None:
        self.checker = SpecChecker()
        self.problems: list[str] = []
        self.count = 0

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        self.count += 1
        request = response.request
        found = self.checker.check(
            request.method, request.url.path, response.status_code, response.content, response.headers
        )
        self.problems.extend(found)


@asynccontextmanager
async def checked_client(
    server: PaperServer, recorder: Recorder, **kwargs: Any
) -> AsyncIterator[httpx.AsyncClient]:
    headers = kwargs.pop("headers", HEADERS)
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, timeout=10, event_hooks={"response": [recorder]}, **kwargs
    ) as client:
        yield client


async def trade_updates(server: PaperServer, frames: list[dict[str, Any]]) -> ClientConnection:
    ws = await connect(server.stream_url)
    auth = {
        "action": "authenticate",
        "data": {"key_id": TEST_KEYS.key_id, "secret_key": TEST_KEYS.secret_key},
    }
    await ws.send(json.dumps(auth))
    assert json.loads(await ws.recv())["data"]["status"] == "authorized"
    await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
    assert json.loads(await ws.recv())["stream"] == "listening"
    return ws


async def collect(ws: ClientConnection, frames: list[dict[str, Any]]) -> None:
    async for frame in ws:
        frames.append(json.loads(frame))


async def walk_every_route(server: PaperServer, client: httpx.AsyncClient) -> dict[str, str]:
    """The session: every route, success and error; returns the ids it made, by name."""
    ids: dict[str, str] = {}
    exchange = server.exchange
    exchange.set_price("AAPL", Decimal("100"))
    exchange.set_price("MSFT", Decimal("50"))
    await client.get("/v2/account")
    await client.get("/v2/clock")
    await client.get("/v2/calendar", params={"start": "2026-11-20", "end": "2026-12-05"})
    await client.get(
        "/v2/calendar", params={"start": "2024-05-20", "end": "2024-06-05", "date_type": "SETTLEMENT"}
    )
    await client.get("/v2/assets")
    await client.get("/v2/assets/AAPL")
    await client.get(f"/v2/assets/{asset_id('MSFT')}")
    assert (await client.get("/v2/assets/NOPE")).status_code == 404
    await client.get("/v2/account/configurations")
    assert (await client.patch("/v2/account/configurations", json={"trade_confirm_email": "none"})).is_success
    assert (await client.patch("/v2/account/configurations", json={"no_shorting": False})).status_code == 422

    long_id = "c" * 128
    bought = await client.post("/v2/orders", json=order_body(qty="10", client_order_id=long_id))
    assert bought.status_code == 200, bought.text
    ids["market"] = bought.json()["id"]

    async def filled(client_order_id: str) -> bool:
        found = await client.get("/v2/orders:by_client_order_id", params={"client_order_id": client_order_id})
        return bool(found.json()["status"] == "filled")

    await wait_until(lambda: filled(long_id), "the market buy to fill")
    limit = await client.post(
        "/v2/orders",
        json=order_body(symbol="MSFT", qty="5", type="limit", limit_price="10", time_in_force="gtc"),
    )
    ids["limit"] = limit.json()["id"]
    replaced = await client.patch(f"/v2/orders/{ids['limit']}", json={"qty": "6", "limit_price": "11"})
    assert replaced.status_code == 200, replaced.text
    ids["replacement"] = replaced.json()["id"]
    assert (await client.patch(f"/v2/orders/{ids['limit']}", json={"qty": "7"})).status_code == 422
    await client.get(f"/v2/orders/{ids['limit']}")
    await client.get("/v2/orders", params={"status": "all", "direction": "asc", "nested": "true"})
    await client.get("/v2/orders", params={"status": "open", "symbols": "MSFT", "side": "buy"})
    assert (await client.delete(f"/v2/orders/{ids['replacement']}")).status_code == 204
    assert (await client.delete(f"/v2/orders/{ids['replacement']}")).status_code == 422
    await client.post("/v2/orders", json=order_body(type="limit", limit_price="1", time_in_force="gtc"))
    # Buy stop and stop-limit orders rest until the price (100 here) rises to their stop.
    stop = order_body(type="stop", stop_price="110", time_in_force="gtc")
    assert (await client.post("/v2/orders", json=stop)).status_code == 200
    stop_limit = order_body(type="stop_limit", stop_price="110", limit_price="111", time_in_force="gtc")
    assert (await client.post("/v2/orders", json=stop_limit)).status_code == 200
    await walk_every_order_type(client, ids)
    assert (await client.delete("/v2/orders")).status_code == 207

    # Errors a client meets: each must be Alpaca's {code, message}.
    assert (await client.post("/v2/orders", json=order_body(qty="100000"))).status_code == 403
    assert (await client.post("/v2/orders", json=order_body(time_in_force=None))).status_code == 422
    assert (await client.post("/v2/orders", json=order_body(type=None))).status_code == 422
    assert (await client.post("/v2/orders", json=order_body(client_order_id="x" * 129))).status_code == 422
    assert (await client.post("/v2/orders", content=b"{not json")).status_code == 422
    assert (await client.get("/v2/orders/00000000-0000-4000-8000-000000000000")).status_code == 404
    assert (await client.get("/v2/orders", params={"limit": "many"})).status_code == 422

    await client.get("/v2/positions")
    await client.get("/v2/positions/AAPL")
    await client.get(f"/v2/positions/{asset_id('AAPL')}")
    assert (await client.get("/v2/positions/MSFT")).status_code == 404
    assert (await client.delete("/v2/positions/AAPL", params={"qty": "2"})).status_code == 200
    assert (await client.delete("/v2/positions/AAPL", params={"qty": "100"})).status_code == 403
    assert (await client.delete("/v2/positions/AAPL", params={"percentage": "50"})).status_code == 200
    await wait_until(lambda: _no_open_orders(client), "the closing sells to fill")
    assert (await client.delete("/v2/positions", params={"cancel_orders": "true"})).status_code == 207
    await wait_until(lambda: _no_open_orders(client), "the last sells to fill")

    await client.get("/v2/account/portfolio/history", params={"period": "1D", "timeframe": "1Min"})
    await client.get("/v2/account/portfolio/history")
    await client.get("/v2/account/activities")
    await client.get("/v2/account/activities/FILL", params={"direction": "asc"})

    window = {"timeframe": "1Min", "start": "2026-11-02T10:00:00Z", "end": "2026-11-02T10:05:00Z"}
    paged = await client.get("/v2/stocks/bars", params={"symbols": "AAPL,MSFT", "limit": 4, **window})
    assert paged.json()["next_page_token"] is not None
    await client.get("/v2/stocks/bars", params={"symbols": "AAPL,MSFT", **window})
    await client.get("/v2/stocks/AAPL/bars", params={"sort": "desc", **window})
    await client.get("/v1beta3/crypto/us/bars", params={"symbols": "BTC/USD", **window})
    assert (
        await client.get("/v2/stocks/bars", params={"symbols": "AAPL", "timeframe": "1Year"})
    ).status_code == 400
    return ids


async def walk_every_order_type(client: httpx.AsyncClient, ids: dict[str, str]) -> None:
    """Every other order type and time in force the spec has, each accepted (opg and cls by the hour)."""
    trailing = order_body(side="sell", qty="2", type="trailing_stop", trail_percent="2", time_in_force="gtc")
    answer = await client.post("/v2/orders", json=trailing)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["hwm"], answer.json()["stop_price"]) == ("100", "98")
    ids["trailing"] = answer.json()["id"]
    retrailed = await client.patch(f"/v2/orders/{ids['trailing']}", json={"trail": "3"})
    assert retrailed.status_code == 200, retrailed.text
    assert (retrailed.json()["trail_percent"], retrailed.json()["hwm"]) == ("3", "100")
    by_price = order_body(type="trailing_stop", trail_price="1.5", time_in_force="day")
    assert (await client.post("/v2/orders", json=by_price)).status_code == 200
    notional = await client.post("/v2/orders", json=order_body(qty=None, notional="50"))
    assert notional.status_code == 200, notional.text
    assert (notional.json()["qty"], notional.json()["notional"]) == (None, "50")
    ids["notional"] = notional.json()["id"]
    assert (await client.post("/v2/orders", json=order_body(qty="0.5"))).status_code == 200
    extended = order_body(type="limit", limit_price="90", extended_hours=True)
    assert (await client.post("/v2/orders", json=extended)).json()["extended_hours"] is True
    for tif in ("opg", "cls"):  # refused (422) in Alpaca's closed window, which depends on the hour
        answer = await client.post("/v2/orders", json=order_body(time_in_force=tif))
        assert answer.status_code in (200, 422), answer.text
    # Alpaca's refusals of these types, each Alpaca-shaped.
    for bad in (
        order_body(type="trailing_stop", time_in_force="gtc"),
        order_body(qty=None, notional="50", type="limit", limit_price="10"),
        order_body(qty="0.5", time_in_force="gtc"),
        order_body(symbol="BTC/USD", time_in_force="day"),
        order_body(type="market", extended_hours=True),
    ):
        assert (await client.post("/v2/orders", json=bad)).status_code == 422, bad
    assert (await client.patch(f"/v2/orders/{ids['notional']}", json={"qty": "1"})).status_code == 422


async def _no_open_orders(client: httpx.AsyncClient) -> bool:
    return bool((await client.get("/v2/orders", params={"status": "open"})).json() == [])


async def test_every_answer_matches_alpacas_spec(tmp_path: Path) -> None:
    """Every REST answer and every trade_updates frame of a full session validates against the spec."""
    recorder = Recorder()
    frames: list[dict[str, Any]] = []
    async with paper_server(tmp_path) as server, checked_client(server, recorder) as client:
        ws = await trade_updates(server, frames)
        reader = asyncio.create_task(collect(ws, frames))
        try:
            ids = await walk_every_route(server, client)
            await wait_until(_frames_for(frames, ids["replacement"], "canceled"), "the last stream frames")
        finally:
            await ws.close()
            await reader
    assert recorder.problems == []
    missing = REQUIRED - recorder.checker.seen
    assert not missing, f"the session never met: {sorted(missing)}"
    stream_problems = [
        p for frame in frames for p in problems(frame, trade_update_schema(), where="stream: ")
    ]
    assert stream_problems == []
    events = {(f["data"]["event"], f["data"]["order"]["id"]) for f in frames}
    assert {("replaced", ids["limit"]), ("new", ids["replacement"]), ("fill", ids["market"])} <= events
    assert {("replaced", ids["trailing"]), ("new", ids["notional"])} <= events
    replaced = next(f["data"]["order"] for f in frames if f["data"]["event"] == "replaced")
    assert (replaced["status"], replaced["replaced_by"]) == ("replaced", ids["replacement"])


def _frames_for(frames: list[dict[str, Any]], order_id: str, event: str) -> Any:
    async def seen() -> bool:
        return any(f["data"]["event"] == event and f["data"]["order"]["id"] == order_id for f in frames)

    return seen


async def test_every_error_is_alpaca_shaped(tmp_path: Path) -> None:
    """Unknown routes (404), wrong methods (405), bad input (422) and wrong keys (401) all answer
    Alpaca's {code, message}, with rate-limit headers; FastAPI's {"detail": …} never leaks."""
    recorder = Recorder()
    async with paper_server(tmp_path) as server, checked_client(server, recorder) as client:
        answers = [
            await client.get("/v2/no-such-route"),
            await client.get("/nothing/here"),
            await client.put("/v2/orders"),
            await client.post("/v2/clock"),
            await client.patch("/v2/account/configurations", content=b"[]"),
            await client.delete("/v2/positions/AAPL", params={"qty": "1", "percentage": "5"}),
        ]
        async with checked_client(server, recorder, headers={}) as stranger:
            answers.append(await stranger.get("/v2/account"))
    assert [a.status_code for a in answers] == [404, 404, 405, 405, 422, 404, 401]
    for answer in answers:
        body = answer.json()
        assert set(body) == {"code", "message"}, body
        assert 10_000_000 <= body["code"] <= 99_999_999  # Alpaca's eight-digit codes
        assert int(answer.headers["X-RateLimit-Limit"]) == 200
    assert recorder.problems == []


async def test_listen_before_authenticating_is_refused_as_alpaca_does(tmp_path: Path) -> None:
    """A `listen` before `authenticate` is answered unauthorized with action "listen", then closed."""
    async with paper_server(tmp_path) as server, connect(server.stream_url) as ws:
        await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        answer = json.loads(await ws.recv())
        assert answer == {"stream": "authorization", "data": {"status": "unauthorized", "action": "listen"}}
        await asyncio.wait_for(ws.wait_closed(), 5)


async def test_market_data_stream_bars_match_the_spec(tmp_path: Path) -> None:
    """Bar messages on the stock and crypto market-data streams have the spec's bar shape plus T and S."""
    opened = datetime(2026, 11, 2, 15, 30, tzinfo=UTC)

    def bar(symbol: str) -> Bar:
        price = Decimal("101.25")
        return Bar(
            symbol=symbol,
            open_time=opened,
            close_time=opened + timedelta(minutes=1),
            open=price,
            high=price + 1,
            low=price - 1,
            close=price,
            volume=Decimal(1200),
            source="test",
        )

    found: list[str] = []
    async with paper_server(tmp_path) as server:
        base = server.market_data_url
        for path, market, symbol in (
            ("/v2/iex", "stocks", "AAPL"),
            ("/v1beta3/crypto/us", "crypto", "BTC/USD"),
        ):
            async with connect(base + path) as ws:
                assert json.loads(await ws.recv()) == [{"T": "success", "msg": "connected"}]
                await ws.send(
                    json.dumps({"action": "auth", "key": TEST_KEYS.key_id, "secret": TEST_KEYS.secret_key})
                )
                assert json.loads(await ws.recv())[0]["msg"] == "authenticated"
                await ws.send(json.dumps({"action": "subscribe", "bars": [symbol]}))
                assert json.loads(await ws.recv())[0]["T"] == "subscription"
                server.market.publish([bar(symbol)])
                messages = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert [m["S"] for m in messages] == [symbol]
                for message in messages:
                    found.extend(problems(message, stream_bar_schema(market), MARKET_DATA, f"{path}: "))
    assert found == []
