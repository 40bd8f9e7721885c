"""AlpacaBars end to end: our market-data websocket client against the paper server's market-data
websocket yields our validated Bars (stocks and crypto on their own paths), survives bad frames,
reconnects (and says so) when the server drops it, and ``[marketdata] url`` maps to both stream URLs
as the module docstring says."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type stubs
import pytest
from structlog.testing import capture_logs

from autoquant.clocks import SystemClock
from autoquant.domain.bars import Bar
from autoquant.errors import ConfigError
from autoquant.marketdata import AlpacaBars
from autoquant.marketdata.alpaca_bars import StreamUrls, stream_urls
from autoquant.runtime.config import Config, MarketDataSettings, PaperSettings, parse
from autoquant.runtime.paper_server import PaperServer
from autoquant.runtime.sources import build_source
from tests.brokers.server_harness import TEST_KEYS
from tests.brokers.test_market_stream import bar
from tests.e2e.daemon_harness import query
from tests.workers.test_daemon_inprocess import make_daemon, settings, stop

SYMBOLS = ["AAPL", "MSFT", "BTC/USD"]
OPEN = datetime(2024, 3, 1, 15, 30, tzinfo=UTC)


def server_config(tmp_path: Path, bar_seconds: float = 0.1) -> Config:
    return Config(
        paper=PaperSettings(state_path=tmp_path / "paper.db", latency_s=0.02, partial_fill_probability=0.0),
        marketdata=MarketDataSettings(symbols=SYMBOLS, bar_seconds=bar_seconds),
    )


def source_for(
    server: PaperServer, symbols: list[str], *, secret_key: str = TEST_KEYS.secret_key
) -> AlpacaBars:
    """AlpacaBars at the server's market-data base URL (stocks and crypto each on their path)."""
    return AlpacaBars(symbols, key_id=TEST_KEYS.key_id, secret_key=secret_key, url=server.market_data_url)


async def wait_for(check: Callable[[], object], what: str, timeout_s: float = 5.0) -> None:
    """Poll ``check()`` until true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.01)


async def take(bars: AsyncIterator[Bar], count: int, timeout_s: float = 5.0) -> list[Bar]:
    async with asyncio.timeout(timeout_s):
        return [await anext(bars) for _ in range(count)]


async def test_daemon_source_yields_valid_bars_for_stocks_and_crypto_from_the_walk(tmp_path: Path) -> None:
    """``source = "alpaca"`` with ``url = ws://…/v2/iex`` yields the walk's bars as our Bars, for two
    stocks and a crypto pair (over the crypto path), at the prices the venue now has."""
    async with PaperServer(server_config(tmp_path), TEST_KEYS) as server:
        settings = MarketDataSettings(
            source="alpaca", symbols=SYMBOLS, url=f"{server.market_data_url}/v2/iex", bar_seconds=0.1
        )
        source = build_source(settings, SystemClock(), secrets=TEST_KEYS)
        bars = aiter(source)
        try:
            seen: dict[str, list[Bar]] = {s: [] for s in SYMBOLS}
            async with asyncio.timeout(10):
                while min(len(got) for got in seen.values()) < 2:
                    got = await anext(bars)
                    assert isinstance(got, Bar) and got.source == "alpaca"
                    seen[got.symbol].append(got)
        finally:
            await bars.aclose()  # type: ignore[attr-defined]  # an async generator
        for symbol, symbol_bars in seen.items():
            opens = [b.open_time for b in symbol_bars]
            assert opens == sorted(opens), symbol
            assert all(b.close == b.close.quantize(Decimal("0.01")) for b in symbol_bars), "cents exactly"
        assert server.market.subscribers("AAPL") == 0, "close() left a subscriber connected"


async def test_published_bars_map_exactly_and_only_subscribed_symbols_arrive(tmp_path: Path) -> None:
    """A bar published by the server arrives with its exact decimal prices, open time and volume;
    a symbol the source did not ask for never arrives."""
    async with PaperServer(server_config(tmp_path), TEST_KEYS, feed_prices=False) as server:
        source = source_for(server, ["AAPL", "BTC/USD"])
        bars = aiter(source)
        pending = asyncio.ensure_future(anext(bars))
        try:
            await wait_for(
                lambda: server.market.subscribers("AAPL") and server.market.subscribers("BTC/USD"),
                "both streams to subscribe",
            )
            server.market.publish([bar("MSFT"), bar("AAPL"), bar("BTC/USD", volume="0.125")])
            async with asyncio.timeout(5):
                first = await pending
            [second] = await take(bars, 1)
        finally:
            pending.cancel()
            await source.close()
        by_symbol = {b.symbol: b for b in (first, second)}
        assert set(by_symbol) == {"AAPL", "BTC/USD"}
        aapl = by_symbol["AAPL"]
        assert (aapl.open, aapl.high, aapl.low, aapl.close) == (
            Decimal("100.10"),
            Decimal("102.00"),
            Decimal("99.95"),
            Decimal("101.25"),
        )
        assert aapl.open_time == OPEN and aapl.close_time == OPEN + timedelta(minutes=1)
        assert by_symbol["BTC/USD"].volume == Decimal("0.125")


async def test_bad_frames_from_the_server_do_not_stop_the_source(tmp_path: Path) -> None:
    """Undecodable frames, a frame that is not a list, and invalid bars are skipped (the invalid bars
    counted as refused); the next good bar still arrives on the same connection."""
    async with PaperServer(server_config(tmp_path), TEST_KEYS, feed_prices=False) as server:
        source = source_for(server, ["AAPL"])
        bars = aiter(source)
        pending = asyncio.ensure_future(anext(bars))
        try:
            await wait_for(lambda: server.market.subscribers("AAPL"), "the stock stream to subscribe")
            server.market.inject_frame(b"\xc1 not msgpack")
            server.market.inject_frame(msgpack.packb({"T": "b", "S": "AAPL"}))
            broken_bar = {"T": "b", "S": "AAPL", "o": 1.0, "h": 0.5, "l": 2.0, "c": 1.0, "v": 1}
            server.market.inject_frame(msgpack.packb([broken_bar | {"t": msgpack.Timestamp(1_700_000_000)}]))
            server.market.inject_frame(msgpack.packb([{"T": "b", "S": "AAPL", "c": "x", "t": 7}]))
            server.market.publish([bar("AAPL", close="100.50")])
            async with asyncio.timeout(5):
                good = await pending
        finally:
            pending.cancel()
            await source.close()
        assert good.close == Decimal("100.50")
        assert source.refused == 2
        assert server.market.auth_failures == 0


async def test_the_source_reconnects_after_the_server_drops_it_and_logs_it(tmp_path: Path) -> None:
    """When the server drops both connections, each is logged as disconnected and reconnecting, comes
    back subscribed, and bars published afterwards still arrive."""
    async with PaperServer(server_config(tmp_path), TEST_KEYS, feed_prices=False) as server:
        source = AlpacaBars(
            ["AAPL", "BTC/USD"],
            key_id=TEST_KEYS.key_id,
            secret_key=TEST_KEYS.secret_key,
            url=server.market_data_url,
            reconnect_initial_s=0.05,
        )
        bars = aiter(source)
        with capture_logs() as logs:
            pending = asyncio.ensure_future(anext(bars))
            try:
                await wait_for(lambda: source.connections == 2, "both streams to subscribe")
                assert server.market.drop_connections() == 2
                await wait_for(lambda: source.connections == 4, "both streams to subscribe again")
                await wait_for(
                    lambda: server.market.subscribers("AAPL") and server.market.subscribers("BTC/USD"),
                    "the new sessions to be the subscribed ones",
                )
                server.market.publish([bar("AAPL"), bar("BTC/USD")])
                async with asyncio.timeout(5):
                    first = await pending
                [second] = await take(bars, 1)
            finally:
                pending.cancel()
                await source.close()
    assert {first.symbol, second.symbol} == {"AAPL", "BTC/USD"}
    stocks, crypto = f"{server.market_data_url}/v2/iex", f"{server.market_data_url}/v1beta3/crypto/us"
    for event in ("market_data_disconnected", "market_data_reconnecting"):
        assert {entry["url"] for entry in logs if entry["event"] == event} == {stocks, crypto}, event
    connected = [entry for entry in logs if entry["event"] == "market_data_connected"]
    assert sorted(entry["connection"] for entry in connected) == [1, 2, 3, 4]


async def test_wrong_keys_yield_nothing_and_close_cleanly(tmp_path: Path) -> None:
    """With keys the server refuses, the source never subscribes nor yields, and closes promptly."""
    async with PaperServer(server_config(tmp_path), TEST_KEYS, feed_prices=False) as server:
        source = source_for(server, ["AAPL"], secret_key="wrong")
        bars = aiter(source)
        pending = asyncio.ensure_future(anext(bars))
        try:
            await wait_for(lambda: server.market.auth_failures >= 1, "the server to refuse the keys")
            server.market.publish([bar("AAPL")])
            assert not pending.done() and server.market.subscribers("AAPL") == 0
        finally:
            pending.cancel()
            async with asyncio.timeout(3):
                await source.close()


@pytest.mark.parametrize(
    ("url", "feed", "expected"),
    [
        (None, "iex", StreamUrls(None, None)),
        ("ws://h:1", "iex", StreamUrls("ws://h:1/v2/iex", "ws://h:1/v1beta3/crypto/us")),
        ("ws://h:1/", "sip", StreamUrls("ws://h:1/v2/sip", "ws://h:1/v1beta3/crypto/us")),
        ("ws://h:1/v2/iex", "iex", StreamUrls("ws://h:1/v2/iex", "ws://h:1/v1beta3/crypto/us")),
        ("ws://h:1/v1beta3/crypto/us", "sip", StreamUrls("ws://h:1/v2/sip", "ws://h:1/v1beta3/crypto/us")),
        ("http://h:1", "iex", StreamUrls("ws://h:1/v2/iex", "ws://h:1/v1beta3/crypto/us")),
        ("https://p/alpaca", "iex", StreamUrls("wss://p/alpaca/v2/iex", "wss://p/alpaca/v1beta3/crypto/us")),
    ],
)
def test_marketdata_url_maps_to_both_stream_urls(url: str | None, feed: str, expected: StreamUrls) -> None:
    """A base or any one stream URL gives both: stocks at /v2/{feed}, crypto at /v1beta3/crypto/us."""
    assert stream_urls(url, feed) == expected


@pytest.mark.parametrize("url", ["ws://h:1/v2/sip", "tcp://h:1"])
def test_conflicting_or_unusable_urls_are_config_errors(url: str) -> None:
    """A URL naming another feed than ``feed``, or not a websocket URL, fails at construction."""
    with pytest.raises(ConfigError, match="marketdata"):
        AlpacaBars(["AAPL"], key_id="k", secret_key="s", url=url, feed="iex")


async def test_the_daemon_trades_on_bars_from_the_market_data_websocket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole daemon with ``source = "alpaca"`` pointed at a paper server's ``/v2/iex`` decides on
    those bars and fills on the embedded exchange (keys from APCA_* as in production)."""
    monkeypatch.setenv("APCA_API_KEY_ID", TEST_KEYS.key_id)
    monkeypatch.setenv("APCA_API_SECRET_KEY", TEST_KEYS.secret_key)
    async with PaperServer(server_config(tmp_path / "feed", bar_seconds=0.05), TEST_KEYS) as server:
        data = settings(tmp_path / "daemon")
        data["marketdata"] = {
            "source": "alpaca",
            "symbols": ["AAPL", "MSFT"],
            "bar_seconds": 0.05,
            "url": f"{server.market_data_url}/v2/iex",
        }
        config = parse(data)
        daemon = make_daemon(config)
        task = asyncio.create_task(daemon.run())
        try:
            await wait_for(
                lambda: query(config.ledger.path, "SELECT 1 FROM fills LIMIT 1") or task.done(), "a fill", 15
            )
            assert not task.done(), task.exception() if task.done() else None
        finally:
            code, _ = await stop(daemon, task)
        assert code == 0
        assert query(config.ledger.path, "SELECT count(*) FROM decisions")[0][0] > 0
