"""Historical bars through alpaca-py's own historical clients, from Alpaca or from a paper-server.

``fetch_bars`` asks ``StockHistoricalDataClient.get_stock_bars`` for stock symbols and
``CryptoHistoricalDataClient.get_crypto_bars`` for pairs (``BTC/USD``), with ``url_override`` when a
``url`` is given (a paper-server's ``http://host:port``; unset: Alpaca's data API). The clients page
through ``next_page_token`` themselves. What comes back is validated at this boundary: every bar
becomes a domain ``Bar`` (prices exact, through the float's shortest repr, open time UTC, close time
one timeframe later) plus Alpaca's trade count and VWAP; a bar that is not valid, or an answer the
clients cannot get, is a ``MarketDataError`` saying what to check.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from autoquant.domain.bars import Bar
from autoquant.domain.timeframes import Timeframe
from autoquant.domain.values import from_ns, to_decimal, to_ns
from autoquant.marketdata.source import MarketDataError

with warnings.catch_warnings():
    # alpaca-py's package imports its websocket streams, which import websockets.legacy.
    warnings.filterwarnings("ignore", message="websockets.legacy is deprecated", category=DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.data.historical.crypto import CryptoHistoricalDataClient
    from alpaca.data.historical.stock import StockHistoricalDataClient
    from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

_UNITS = {
    "Min": TimeFrameUnit.Minute,
    "Hour": TimeFrameUnit.Hour,
    "Day": TimeFrameUnit.Day,
    "Week": TimeFrameUnit.Week,
    "Month": TimeFrameUnit.Month,
}


@dataclass(frozen=True)
class HistoricalBar:
    """A bar as Alpaca's history gives it: the bar, and its trade count and VWAP when known."""

    bar: Bar
    trade_count: int | None
    vwap: Decimal | None


def fetch_bars(
    symbols: Sequence[str],
    timeframe: Timeframe,
    start: dt.datetime,
    end: dt.datetime,
    *,
    key_id: str,
    secret_key: str,
    url: str | None = None,
    feed: str | None = None,
) -> list[HistoricalBar]:
    """Every bar of ``symbols`` opening in [start, end], sorted by symbol then time."""
    frame = TimeFrame(timeframe.amount, _UNITS[timeframe.unit])
    stocks = [s for s in symbols if "/" not in s]
    pairs = [s for s in symbols if "/" in s]
    raw: list[Any] = []
    try:
        if stocks:
            stock_client = StockHistoricalDataClient(key_id, secret_key, url_override=url)
            stock_request = StockBarsRequest(
                symbol_or_symbols=stocks, timeframe=frame, start=start, end=end, feed=feed
            )
            raw.extend(_bars_of(stock_client.get_stock_bars(stock_request)))
        if pairs:
            crypto_client = CryptoHistoricalDataClient(key_id, secret_key, url_override=url)
            crypto_request = CryptoBarsRequest(symbol_or_symbols=pairs, timeframe=frame, start=start, end=end)
            raw.extend(_bars_of(crypto_client.get_crypto_bars(crypto_request)))
    except APIError as error:
        raise MarketDataError(
            f"the market-data API refused the request ({error.status_code}): {error}"
        ) from None
    except OSError as error:
        where = url or "Alpaca's market-data API"
        raise MarketDataError(f"cannot reach {where}: {error}: check the URL and the network") from None
    found = [_validated(item, timeframe) for item in raw]
    return sorted(found, key=lambda h: (h.bar.symbol, h.bar.open_time))


def _bars_of(answer: Any) -> list[Any]:
    data = getattr(answer, "data", None)
    if not isinstance(data, dict):
        raise MarketDataError(f"the market-data API answered {type(answer).__name__}, not bars")
    return [bar for bars in data.values() for bar in bars]


def _validated(item: Any, timeframe: Timeframe) -> HistoricalBar:
    try:
        opened = item.timestamp
        if not isinstance(opened, dt.datetime) or opened.tzinfo is None:
            raise ValueError(f"timestamp {opened!r} has no timezone")
        open_ns = to_ns(opened.astimezone(dt.UTC))
        bar = Bar(
            symbol=item.symbol,
            open_time=from_ns(open_ns),
            close_time=from_ns(timeframe.next_start(open_ns)),
            open=to_decimal(item.open),
            high=to_decimal(item.high),
            low=to_decimal(item.low),
            close=to_decimal(item.close),
            volume=to_decimal(item.volume),
            source="alpaca-history",
        )
    except (ValidationError, ValueError, TypeError, AttributeError) as error:
        raise MarketDataError(f"a bar from the market-data API is not valid ({error}): {item!r}") from None
    count = None if item.trade_count is None else int(item.trade_count)
    vwap = None if item.vwap is None else to_decimal(item.vwap)
    return HistoricalBar(bar, count, vwap)
