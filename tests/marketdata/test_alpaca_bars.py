"""Alpaca bar mapping (raw websocket message to our Bar), offline construction, and the factory."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type stubs
import pytest

from autoquant.clocks import FakeClock
from autoquant.marketdata import AlpacaBars, CsvBars, SyntheticBars, bar_from_alpaca
from autoquant.runtime.config import MarketDataSettings, Secrets
from autoquant.runtime.sources import build_source

RAW = {
    "T": "b",
    "S": "AAPL",
    "o": 174,
    "h": 174.84,
    "l": 172.31,
    "c": 174.61,
    "v": 85998033,
    "n": 7,
    "vw": 173.7,
}


def test_raw_bar_maps_exactly_with_a_one_minute_length() -> None:
    """Float prices become their exact decimal text; the timestamp is the open, close is a minute later."""
    raw = RAW | {"t": msgpack.Timestamp.from_datetime(datetime(2022, 2, 1, 15, 30, tzinfo=UTC))}
    bar = bar_from_alpaca(raw)
    assert (bar.symbol, bar.open, bar.high, bar.low, bar.close) == (
        "AAPL",
        Decimal(174),
        Decimal("174.84"),
        Decimal("172.31"),
        Decimal("174.61"),
    )
    assert bar.volume == Decimal(85998033)
    assert bar.open_time == datetime(2022, 2, 1, 15, 30, tzinfo=UTC)
    assert bar.close_time == datetime(2022, 2, 1, 15, 31, tzinfo=UTC)
    assert bar.source == "alpaca"


def test_iso_string_timestamps_are_accepted() -> None:
    """REST-shaped bars carry RFC 3339 strings; they map the same way."""
    assert bar_from_alpaca(RAW | {"t": "2022-02-01T05:00:00Z"}).open_time == datetime(
        2022, 2, 1, 5, tzinfo=UTC
    )


def test_invalid_bar_is_refused() -> None:
    """A bar whose high is below its low raises ValueError rather than reaching a strategy."""
    with pytest.raises(ValueError, match="high"):
        bar_from_alpaca(RAW | {"h": 100.0, "t": "2022-02-01T05:00:00Z"})


async def test_refused_messages_are_counted_not_raised() -> None:
    """A garbage message in the stream handler is counted; the stream keeps going."""
    source = AlpacaBars(["AAPL"], key_id="k", secret_key="s", url="ws://127.0.0.1:9/stream")
    await source._on_bar({"T": "b", "S": "AAPL"})
    await source._on_bar("not a dict")
    assert source.refused == 2
    assert "KeyError" in source.last_refusal or "ValueError" in source.last_refusal
    await source.close()  # never started: nothing to stop


def test_factory_builds_each_configured_source(tmp_path: Path) -> None:
    """synthetic, csv and alpaca settings each build their source without touching the network."""
    clock = FakeClock()
    assert isinstance(build_source(MarketDataSettings(), clock), SyntheticBars)
    csv_settings = MarketDataSettings(source="csv", csv_path=tmp_path / "bars.csv")
    assert isinstance(build_source(csv_settings, clock), CsvBars)
    alpaca = build_source(
        MarketDataSettings(source="alpaca", symbols=["AAPL", "BTC/USD"]),
        clock,
        secrets=Secrets(key_id="k", secret_key="s"),
    )
    assert isinstance(alpaca, AlpacaBars)
