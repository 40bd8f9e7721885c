"""The paper server's market-data websocket speaks Alpaca's protocol to a raw websocket client: the
msgpack handshake, keys refused with 402, bars only for subscribed symbols of the path's market,
JSON for clients that do not ask for msgpack, and the walk's bars published as they are made."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type stubs
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from autoquant.domain.bars import Bar
from autoquant.runtime.config import Config, MarketDataSettings, PaperSettings
from autoquant.runtime.paper_server import PaperServer
from tests.brokers.server_harness import TEST_KEYS, paper_server, wait_until

MSGPACK = {"Content-Type": "application/msgpack"}
OPEN = datetime(2024, 3, 1, 15, 30, tzinfo=UTC)


def bar(symbol: str, close: str = "101.25", volume: str = "1200") -> Bar:
    return Bar(
        symbol=symbol,
        open_time=OPEN,
        close_time=OPEN + timedelta(minutes=1),
        open=Decimal("100.10"),
        high=Decimal("102.00"),
        low=Decimal("99.95"),
        close=Decimal(close),
        volume=Decimal(volume),
        source="test",
    )


async def receive(ws: ClientConnection) -> list[dict[str, Any]]:
    frame = await ws.recv()
    messages = msgpack.unpackb(frame) if isinstance(frame, bytes) else json.loads(frame)
    assert isinstance(messages, list)
    return messages


@asynccontextmanager
async def session(
    url: str, *, auth: bool = True, subscribe: list[str] | None = None
) -> AsyncIterator[ClientConnection]:
    """A msgpack client at ``url``, past the handshake (and subscribed to ``subscribe`` bars)."""
    async with connect(url, additional_headers=MSGPACK) as ws:
        assert await receive(ws) == [{"T": "success", "msg": "connected"}]
        if auth:
            await ws.send(
                msgpack.packb({"action": "auth", "key": TEST_KEYS.key_id, "secret": TEST_KEYS.secret_key})
            )
            assert await receive(ws) == [{"T": "success", "msg": "authenticated"}]
        if subscribe is not None:
            await ws.send(msgpack.packb({"action": "subscribe", "bars": subscribe}))
            [ack] = await receive(ws)
            assert ack["T"] == "subscription" and ack["bars"] == sorted(subscribe)
        yield ws


def ws_url(server: PaperServer, path: str) -> str:
    return f"{server.market_data_url}{path}"


async def test_handshake_and_subscription_ack_list_every_channel(tmp_path: Path) -> None:
    """connected → auth → authenticated → subscribe → subscription naming each channel of the feed."""
    async with paper_server(tmp_path) as server, session(ws_url(server, "/v2/iex")) as ws:
        await ws.send(msgpack.packb({"action": "subscribe", "bars": ["AAPL"], "trades": []}))
        [ack] = await receive(ws)
        assert ack == {
            "T": "subscription",
            "trades": [],
            "quotes": [],
            "bars": ["AAPL"],
            "updatedBars": [],
            "dailyBars": [],
            "statuses": [],
            "lulds": [],
            "corrections": [],
            "cancelErrors": [],
        }
        await ws.send(msgpack.packb({"action": "unsubscribe", "bars": ["AAPL"]}))
        [ack] = await receive(ws)
        assert ack["bars"] == []


async def test_wrong_keys_are_refused_with_402_and_the_connection_closed(tmp_path: Path) -> None:
    """Bad keys get Alpaca's auth-failed error, then the server closes the socket."""
    async with paper_server(tmp_path) as server, session(ws_url(server, "/v2/sip"), auth=False) as ws:
        await ws.send(msgpack.packb({"action": "auth", "key": TEST_KEYS.key_id, "secret": "wrong"}))
        assert await receive(ws) == [{"T": "error", "code": 402, "msg": "auth failed"}]
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_a_silent_client_gets_auth_timeout_and_is_closed(tmp_path: Path) -> None:
    """A connection that never authenticates gets 404 auth timeout, then the server closes it."""
    async with paper_server(tmp_path) as server:
        server.market.auth_timeout_s = 0.1
        async with session(ws_url(server, "/v1beta3/crypto/us"), auth=False) as ws:
            assert await receive(ws) == [{"T": "error", "code": 404, "msg": "auth timeout"}]
            with pytest.raises(ConnectionClosed):
                await ws.recv()


async def test_errors_before_and_after_auth_keep_alpacas_codes(tmp_path: Path) -> None:
    """Subscribe before auth is 401, garbage is 400, a second auth is 403; the session survives them."""
    async with paper_server(tmp_path) as server, session(ws_url(server, "/v2/iex"), auth=False) as ws:
        await ws.send(msgpack.packb({"action": "subscribe", "bars": ["AAPL"]}))
        assert await receive(ws) == [{"T": "error", "code": 401, "msg": "not authenticated"}]
        await ws.send(b"\xc1 not msgpack")
        assert await receive(ws) == [{"T": "error", "code": 400, "msg": "invalid syntax"}]
        auth = {"action": "auth", "key": TEST_KEYS.key_id, "secret": TEST_KEYS.secret_key}
        await ws.send(msgpack.packb(auth))
        assert await receive(ws) == [{"T": "success", "msg": "authenticated"}]
        await ws.send(msgpack.packb(auth))
        assert await receive(ws) == [{"T": "error", "code": 403, "msg": "already authenticated"}]
        await ws.send(msgpack.packb({"action": "subscribe", "bars": "AAPL"}))
        assert await receive(ws) == [{"T": "error", "code": 400, "msg": "invalid syntax"}]


async def test_bars_arrive_for_subscribed_symbols_only_and_decode_exactly(tmp_path: Path) -> None:
    """A published batch reaches a client as one msgpack frame with only its symbols; ``t`` is a
    msgpack Timestamp of the bar's open and the prices read back as the exact cent values."""
    async with paper_server(tmp_path) as server, session(ws_url(server, "/v2/iex"), subscribe=["AAPL"]) as ws:
        server.market.publish([bar("MSFT"), bar("AAPL"), bar("BTC/USD")])
        [message] = await receive(ws)
        assert message["T"] == "b" and message["S"] == "AAPL"
        assert isinstance(message["t"], msgpack.Timestamp)
        assert message["t"].to_datetime() == OPEN
        prices = [Decimal(repr(message[k])) for k in "ohlc"]
        assert prices == [Decimal("100.10"), Decimal("102.00"), Decimal("99.95"), Decimal("101.25")]
        assert message["v"] == 1200 and message["n"] >= 1 and isinstance(message["vw"], float)
        server.market.publish([bar("MSFT")])  # not subscribed: nothing; the next AAPL bar is next
        server.market.publish([bar("AAPL", close="101.50")])
        [following] = await receive(ws)
        assert (following["S"], following["c"]) == ("AAPL", 101.5)


async def test_crypto_path_serves_crypto_symbols_and_stock_paths_do_not(tmp_path: Path) -> None:
    """BTC/USD bars go to /v1beta3/crypto/us; a stock path subscribed to '*' never sees them."""
    async with (
        paper_server(tmp_path) as server,
        session(ws_url(server, "/v1beta3/crypto/us"), subscribe=["BTC/USD"]) as crypto,
        session(ws_url(server, "/v2/iex"), subscribe=["*"]) as stocks,
    ):
        server.market.publish([bar("BTC/USD", volume="0.125"), bar("AAPL")])
        [coin] = await receive(crypto)
        assert (coin["S"], coin["v"]) == ("BTC/USD", 0.125)
        assert [m["S"] for m in await receive(stocks)] == ["AAPL"]


async def test_json_clients_get_json_with_rfc3339_times(tmp_path: Path) -> None:
    """Without the msgpack header the stream is JSON text, as on Alpaca; ``t`` is an RFC-3339 string."""
    async with paper_server(tmp_path) as server, connect(ws_url(server, "/v2/iex")) as ws:
        assert await receive(ws) == [{"T": "success", "msg": "connected"}]
        await ws.send(json.dumps({"action": "auth", "key": TEST_KEYS.key_id, "secret": TEST_KEYS.secret_key}))
        assert await receive(ws) == [{"T": "success", "msg": "authenticated"}]
        await ws.send(json.dumps({"action": "subscribe", "bars": ["MSFT"]}))
        assert (await receive(ws))[0]["bars"] == ["MSFT"]
        server.market.publish([bar("MSFT")])
        [message] = await receive(ws)
        assert message["t"] == "2024-03-01T15:30:00Z"


async def test_header_keys_authenticate_without_an_auth_message(tmp_path: Path) -> None:
    """APCA-API-KEY-ID / APCA-API-SECRET-KEY headers authenticate the connection up front."""
    headers = {**MSGPACK, "APCA-API-KEY-ID": TEST_KEYS.key_id, "APCA-API-SECRET-KEY": TEST_KEYS.secret_key}
    async with (
        paper_server(tmp_path) as server,
        connect(ws_url(server, "/v2/iex"), additional_headers=headers) as ws,
    ):
        assert await receive(ws) == [{"T": "success", "msg": "connected"}]
        assert await receive(ws) == [{"T": "success", "msg": "authenticated"}]


async def test_the_price_walk_publishes_each_bar_it_makes(tmp_path: Path) -> None:
    """With the price feed on, every bar the walk makes for a subscribed symbol reaches the client,
    and it is the bar the venue now prices at."""
    config = Config(
        paper=PaperSettings(state_path=tmp_path / "paper.db", latency_s=0.02, partial_fill_probability=0.0),
        marketdata=MarketDataSettings(symbols=["AAPL", "MSFT"], bar_seconds=0.1),
    )
    async with (
        PaperServer(config, TEST_KEYS) as server,
        session(ws_url(server, "/v2/iex"), subscribe=["MSFT"]) as ws,
    ):
        seen: list[dict[str, Any]] = []
        while len(seen) < 3:
            seen.extend(await receive(ws))
        assert {m["S"] for m in seen} == {"MSFT"}
        opens = [m["t"].to_datetime() for m in seen]
        assert opens == sorted(opens) and len(set(opens)) == 3

        async def venue_caught_up() -> bool:
            return server.exchange.last_price("MSFT") is not None

        await wait_until(venue_caught_up, "the venue to price MSFT")
