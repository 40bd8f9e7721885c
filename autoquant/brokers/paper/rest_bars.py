"""Alpaca's historical bars routes on the paper server, so alpaca-py's ``StockHistoricalDataClient`` and
``CryptoHistoricalDataClient`` work offline with ``url_override``.

``GET /v2/stocks/bars?symbols=…``, ``GET /v2/stocks/{symbol}/bars`` and
``GET /v1beta3/crypto/us/bars?symbols=…`` answer ``bar_history`` pages in the market-data spec's
shapes (``stock_bars_resp``, ``stock_bars_resp_single``, ``crypto_bars_resp``): a bar is
``{"t", "o", "h", "l", "c", "v", "n", "vw"}`` with ``t`` the open time (RFC 3339) and numbers as JSON
numbers, as Alpaca sends them. Stock routes serve the exchange's stock symbols, the crypto route its
pairs (``BTC/USD``); other symbols are left out of the answer, as Alpaca leaves out symbols it has no
bars for. ``start`` defaults to the start of today (UTC), ``end`` to now; ``limit`` is 1 to 10 000
(default 1 000) over all symbols. ``feed``, ``adjustment``, ``asof`` and ``currency`` are accepted and
change nothing (synthetic prices have one feed and no corporate actions). A bad parameter is a 400
with Alpaca's ``{code, message}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request

from autoquant.brokers.paper.bar_history import BarPage, BarRequestError, bar_page, parse_timeframe
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.brokers.paper.http_errors import CODE_INVALID, AlpacaHTTPError, choice, time_param
from autoquant.brokers.paper.market_stream import bar_message
from autoquant.brokers.paper.prices import PricePath
from autoquant.domain.bars import Bar
from autoquant.domain.values import to_ns

DEFAULT_LIMIT = 1_000
MAX_LIMIT = 10_000
NS = 1_000_000_000


def bar_json(bar: Bar) -> dict[str, Any]:
    """The REST bar: the stream's bar message (``market_stream.bar_message``, so both say the same
    numbers) with ``t`` as RFC 3339 and without the stream's ``T`` and ``S``."""
    message = bar_message(bar)
    return {"t": bar.open_time.isoformat().replace("+00:00", "Z")} | {
        key: message[key] for key in ("o", "h", "l", "c", "v", "n", "vw")
    }


def _bad(message: str) -> AlpacaHTTPError:
    return AlpacaHTTPError(400, CODE_INVALID, message)


def _moment(value: str | None, name: str) -> int | None:
    """RFC 3339, or a date (its 00:00 UTC), as the market-data API takes both."""
    if value is not None and len(value) == 10:
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise _bad(f"{name}: {value!r} is neither a date (YYYY-MM-DD) nor RFC 3339") from None
        return to_ns(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC))
    try:
        return time_param(value, name)
    except AlpacaHTTPError as error:
        raise _bad(error.message) from None


def build_bars_router(
    exchange: PaperExchange, path: PricePath, guard: Callable[[Request], Awaitable[None]]
) -> APIRouter:
    router = APIRouter(dependencies=[Depends(guard)])
    stocks = sorted(s for s in exchange.symbols if "/" not in s)
    pairs = sorted(s for s in exchange.symbols if "/" in s)

    def page(request: Request, symbols: list[str]) -> BarPage:
        q = request.query_params
        now = exchange.clock.now_ns()
        start = _moment(q.get("start"), "start")
        end = _moment(q.get("end"), "end")
        if start is None:
            start = now - now % (86_400 * NS)
        raw_limit = q.get("limit") or str(DEFAULT_LIMIT)
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise _bad(f"invalid limit {raw_limit!r}: 1 to {MAX_LIMIT}")
        try:
            sort: Literal["asc", "desc"] = choice(q.get("sort"), "sort", ("asc", "desc"), "asc")
            return bar_page(
                path,
                symbols,
                parse_timeframe(q.get("timeframe")),
                start_ns=start,
                end_ns=now if end is None else end,
                now_ns=now,
                limit=int(raw_limit),
                sort=sort,
                page_token=q.get("page_token") or None,
            )
        except AlpacaHTTPError as error:
            raise _bad(error.message) from None
        except BarRequestError as error:
            raise _bad(str(error)) from None

    def requested(request: Request, known: list[str]) -> list[str]:
        wanted = [s.strip() for s in (request.query_params.get("symbols") or "").split(",") if s.strip()]
        if not wanted:
            raise _bad("symbols is required: a comma-separated list")
        return [s for s in dict.fromkeys(wanted) if s in known]

    def multi(found: BarPage) -> dict[str, Any]:
        return {
            "bars": {s: [bar_json(b) for b in bars] for s, bars in found.bars.items()},
            "next_page_token": found.next_page_token,
        }

    @router.get("/v2/stocks/bars")
    async def stock_bars(request: Request) -> dict[str, Any]:
        return multi(page(request, requested(request, stocks)))

    @router.get("/v2/stocks/{symbol}/bars")
    async def one_stock_bars(request: Request, symbol: str) -> dict[str, Any]:
        found = page(request, [symbol] if symbol in stocks else [])
        return {
            "bars": [bar_json(b) for b in found.bars.get(symbol, [])],
            "symbol": symbol,
            "next_page_token": found.next_page_token,
        }

    @router.get("/v1beta3/crypto/{loc}/bars")
    async def crypto_bars(request: Request, loc: str) -> dict[str, Any]:
        if loc != "us":
            raise _bad(f"invalid location {loc!r}: the paper server serves 'us'")
        return multi(page(request, requested(request, pairs)))

    return router
