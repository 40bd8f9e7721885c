"""Historical bars from the paper server: a deterministic price path per seed for any past window,
the same bars the live feed streams, Alpaca's timeframes and paging, and alpaca-py's historical
clients working against it unchanged."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from autoquant.brokers.paper.prices import BLOCK, PricePath
from autoquant.clocks import FakeClock
from autoquant.domain.timeframes import Timeframe, TimeframeError
from autoquant.domain.values import to_ns
from autoquant.runtime.config import Config, MarketDataSettings, PaperSettings
from autoquant.runtime.paper_server import PaperServer
from tests.brokers.server_harness import TEST_KEYS, paper_server, wait_until

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="websockets.legacy is deprecated", category=DeprecationWarning)
    from alpaca.data.historical.crypto import CryptoHistoricalDataClient
    from alpaca.data.historical.stock import StockHistoricalDataClient
    from alpaca.data.models import BarSet
    from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

HEADERS = {"APCA-API-KEY-ID": TEST_KEYS.key_id, "APCA-API-SECRET-KEY": TEST_KEYS.secret_key}
DAY = "2026-11-02"
MINUTE = 60_000_000_000


@asynccontextmanager
async def client_for(server: PaperServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=10) as client:
        yield client


async def bars(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    params = {"symbols": "AAPL,MSFT", "timeframe": "1Min", "start": f"{DAY}T10:00:00Z", **params}
    answer = await client.get("/v2/stocks/bars", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_the_path_is_the_same_point_by_point_or_in_runs() -> None:
    """A run of levels equals the same points asked one by one, across a block boundary, per seed."""
    path = PricePath(7, MINUTE)
    first = 5 * BLOCK - 40
    run = path.levels("AAPL", first, first + 80)
    assert run == [path.levels("AAPL", k, k)[0] for k in range(first, first + 81)]
    assert run == PricePath(7, MINUTE).levels("AAPL", first, first + 80)
    assert run != PricePath(8, MINUTE).levels("AAPL", first, first + 80)
    assert run != path.levels("MSFT", first, first + 80)


def test_the_path_stays_in_a_sane_range_over_decades() -> None:
    """Daily samples over 30 years stay between a tenth and ten times the start: no drift to zero."""
    path = PricePath(42, MINUTE)
    prices = [path.price(path.levels("AAPL", k, k)[0]) for k in range(0, 30 * 525_600, 5_000)]
    assert Decimal(10) < min(prices) and max(prices) < Decimal(1000)


def test_a_bar_is_consistent_and_aggregates_exactly() -> None:
    """Each bar's high and low bound its open and close; a 5-bar aggregate is the first open, the last
    close, the extremes and the summed volume."""
    path = PricePath(42, MINUTE)
    k = 29_000_000
    singles = [path.bar("AAPL", k + i) for i in range(5)]
    five = path.aggregate("AAPL", k, 5)
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in singles)
    assert (five.open, five.close) == (singles[0].open, singles[-1].close)
    assert five.high == max(b.high for b in singles) and five.low == min(b.low for b in singles)
    assert five.volume == sum(b.volume for b in singles)
    assert [b.close for b in singles[:-1]] == [b.open for b in singles[1:]]


def test_timeframes_are_alpacas() -> None:
    """Alpaca's timeframe grammar, with UTC buckets: 15Min on quarter hours, weeks on Mondays, 3Month
    on quarters; anything else is refused naming what is allowed."""
    moment = to_ns(dt.datetime(2026, 11, 4, 13, 52, tzinfo=dt.UTC))  # a Wednesday
    assert Timeframe.parse("15T").bucket_start(moment) == to_ns(
        dt.datetime(2026, 11, 4, 13, 45, tzinfo=dt.UTC)
    )
    assert Timeframe.parse("1W").bucket_start(moment) == to_ns(dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
    quarter = Timeframe.parse("3Month")
    assert quarter.bucket_start(moment) == to_ns(dt.datetime(2026, 10, 1, tzinfo=dt.UTC))
    assert quarter.next_start(quarter.bucket_start(moment)) == to_ns(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    for bad in ("60Min", "2Day", "5Month", "1Fortnight", ""):
        with pytest.raises(TimeframeError):
            Timeframe.parse(bad)


async def test_the_same_window_gives_the_same_bars_every_time(tmp_path: Path) -> None:
    """Two requests, and a second server with the same seed, answer identical bars; 5Min bars are the
    aggregates of the 1Min bars; only finished bars are served."""
    async with paper_server(tmp_path / "a") as server, client_for(server) as client:
        window = {"end": f"{DAY}T10:09:59Z"}
        first = await bars(client, **window)
        assert first == await bars(client, **window)
        assert [b["t"][11:16] for b in first["bars"]["AAPL"]] == [f"10:0{i}" for i in range(10)]
        five = await bars(client, timeframe="5Min", **window)
        minutes = first["bars"]["AAPL"][:5]
        assert five["bars"]["AAPL"][0] | {"vw": None, "n": None} == {
            "t": f"{DAY}T10:00:00Z",
            "o": minutes[0]["o"],
            "h": max(m["h"] for m in minutes),
            "l": min(m["l"] for m in minutes),
            "c": minutes[-1]["c"],
            "v": sum(m["v"] for m in minutes),
            "vw": None,
            "n": None,
        }
        now = server.clock.now_ns()
        recent = await bars(client, start=dt.datetime.fromtimestamp(now / 1e9 - 300, dt.UTC).isoformat())
        last_open = dt.datetime.fromisoformat(recent["bars"]["AAPL"][-1]["t"].replace("Z", "+00:00"))
        assert to_ns(last_open) + MINUTE <= now
    async with paper_server(tmp_path / "b") as server, client_for(server) as client:
        assert await bars(client, **window) == first


async def test_pages_follow_next_page_token_symbol_by_symbol(tmp_path: Path) -> None:
    """With a limit, pages go symbol by symbol in time order (or reversed with sort=desc) and together
    are the unpaged answer; the last page's token is null."""
    async with paper_server(tmp_path) as server, client_for(server) as client:
        window = {"end": f"{DAY}T10:04:00Z"}
        whole = await bars(client, **window)
        for sort in ("asc", "desc"):
            pages, token = [], None
            while True:
                page = await bars(
                    client, limit=3, sort=sort, **window, **({"page_token": token} if token else {})
                )
                pages.append(page)
                token = page["next_page_token"]
                if token is None:
                    break
            assert len(pages) == 4
            joined: dict[str, list[Any]] = {}
            for page in pages:
                for symbol, found in page["bars"].items():
                    joined.setdefault(symbol, []).extend(found)
            expected = whole["bars"] if sort == "asc" else {s: b[::-1] for s, b in whole["bars"].items()}
            assert joined == expected


async def test_bad_requests_are_400_and_unknown_symbols_left_out(tmp_path: Path) -> None:
    """Missing or invalid timeframe, limit, times, token or location answer 400 {code, message};
    symbols the exchange does not price are left out; a single-symbol route answers an empty list."""
    async with paper_server(tmp_path) as server, client_for(server) as client:
        for params in (
            {"timeframe": ""},
            {"timeframe": "61Min"},
            {"limit": "0"},
            {"limit": "10001"},
            {"start": "yesterday"},
            {"page_token": "!!"},
        ):
            answer = await client.get(
                "/v2/stocks/bars", params={"symbols": "AAPL", "timeframe": "1Min", **params}
            )
            assert answer.status_code == 400, params
            assert set(answer.json()) == {"code", "message"}
        assert (await client.get("/v2/stocks/bars", params={"timeframe": "1Min"})).status_code == 400
        crypto = await client.get(
            "/v1beta3/crypto/eu/bars", params={"symbols": "BTC/USD", "timeframe": "1Min"}
        )
        assert crypto.status_code == 400
        unknown = await bars(client, symbols="AAPL,TSLA", end=f"{DAY}T10:01:00Z")
        assert list(unknown["bars"]) == ["AAPL"]
        single = await client.get("/v2/stocks/TSLA/bars", params={"timeframe": "1Min", "start": DAY})
        assert single.json() == {"bars": [], "symbol": "TSLA", "next_page_token": None}


async def test_timeframes_must_be_whole_feed_bars(tmp_path: Path) -> None:
    """With 7-second feed bars a 1Min bar cannot be made of them: 400 naming bar_seconds."""
    config = Config(
        paper=PaperSettings(state_path=tmp_path / "paper.db"),
        marketdata=MarketDataSettings(symbols=["AAPL"], bar_seconds=7),
        strategies=[],
    )
    async with PaperServer(config, TEST_KEYS, feed_prices=False) as server, client_for(server) as client:
        answer = await client.get("/v2/stocks/bars", params={"symbols": "AAPL", "timeframe": "1Min"})
        assert answer.status_code == 400
        assert "bar_seconds" in answer.json()["message"]


async def test_history_serves_the_bar_the_live_feed_streamed(tmp_path: Path) -> None:
    """The bar the price feed publishes at a minute's close is the 1Min bar history serves for it, and
    the venue prices at its close."""
    boundary = to_ns(dt.datetime(2026, 11, 2, 15, 31, tzinfo=dt.UTC))
    clock = FakeClock(boundary - 50_000_000)
    config = Config(
        paper=PaperSettings(state_path=tmp_path / "paper.db", latency_s=0.02),
        marketdata=MarketDataSettings(symbols=["AAPL", "MSFT"], bar_seconds=60),
    )
    async with PaperServer(config, TEST_KEYS, clock=clock) as server, client_for(server) as client:
        async with connect(f"{server.market_data_url}/v2/iex") as ws:
            await ws.recv()
            await ws.send(
                json.dumps({"action": "auth", "key": TEST_KEYS.key_id, "secret": TEST_KEYS.secret_key})
            )
            await ws.recv()
            await ws.send(json.dumps({"action": "subscribe", "bars": ["AAPL"]}))
            await ws.recv()
            streamed = json.loads(await asyncio.wait_for(ws.recv(), 5))[0]
        clock.advance(1)
        served = await bars(client, symbols="AAPL", start="2026-11-02T15:30:00Z", end="2026-11-02T15:30:00Z")
        (bar,) = served["bars"]["AAPL"]
        assert streamed["t"] == bar["t"] == "2026-11-02T15:30:00Z"
        assert {k: streamed[k] for k in ("o", "h", "l", "c", "v", "n", "vw")} == {
            k: bar[k] for k in ("o", "h", "l", "c", "v", "n", "vw")
        }

        async def priced() -> bool:
            return server.exchange.last_price("AAPL") == Decimal(str(bar["c"]))

        await wait_until(priced, "the venue to price AAPL at the bar's close")


async def test_alpaca_py_historical_clients_page_through_the_server(tmp_path: Path) -> None:
    """StockHistoricalDataClient and CryptoHistoricalDataClient with url_override get the server's bars,
    all pages of them, as BarSets."""
    config = Config(
        paper=PaperSettings(state_path=tmp_path / "paper.db"),
        marketdata=MarketDataSettings(symbols=["AAPL", "BTC/USD"], bar_seconds=1),
        strategies=[],
    )
    start = dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)
    async with PaperServer(config, TEST_KEYS, feed_prices=False) as server, client_for(server) as client:
        stocks = StockHistoricalDataClient(TEST_KEYS.key_id, TEST_KEYS.secret_key, url_override=server.url)
        crypto = CryptoHistoricalDataClient(TEST_KEYS.key_id, TEST_KEYS.secret_key, url_override=server.url)
        try:
            request = StockBarsRequest(
                symbol_or_symbols="AAPL",
                timeframe=TimeFrame(1, TimeFrameUnit.Minute),
                start=start,
                end=start + dt.timedelta(minutes=1499),
            )
            stock_set = await asyncio.to_thread(stocks.get_stock_bars, request)
            pair_set = await asyncio.to_thread(
                crypto.get_crypto_bars,
                CryptoBarsRequest(
                    symbol_or_symbols="BTC/USD",
                    timeframe=TimeFrame.Hour,
                    start=start,
                    end=start + dt.timedelta(hours=3),
                ),
            )
        finally:
            stocks._session.close()
            crypto._session.close()
        assert isinstance(stock_set, BarSet) and isinstance(pair_set, BarSet)
        got = stock_set.data["AAPL"]
        assert len(got) == 1500  # two pages of 1000 at most
        assert got[0].timestamp == start
        direct = await bars(client, symbols="AAPL", start="2026-11-02T10:00:00Z", end="2026-11-02T10:00:00Z")
        assert got[0].close == direct["bars"]["AAPL"][0]["c"]
        assert [b.timestamp.hour for b in pair_set.data["BTC/USD"]] == [10, 11, 12, 13]
