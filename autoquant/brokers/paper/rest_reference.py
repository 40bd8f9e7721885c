"""Reference routes of the paper server: ``/v2/clock``, ``/v2/calendar`` and ``/v2/assets``.

The clock and calendar are the NYSE's (``sessions``): ``is_open`` is the regular session, whatever
the paper venue does (it fills around the clock, as its docs say). Assets are the symbols the
exchange prices (``assets``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, Request

from autoquant.brokers.paper.assets import asset_json, find_asset
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.brokers.paper.http_errors import AlpacaHTTPError, choice, invalid, not_found
from autoquant.brokers.paper.sessions import OutsideCalendar, local_hhmm, local_iso, nyse


def _date_param(value: str | None, name: str) -> dt.date | None:
    """A date, or the date part of an RFC 3339 time (Alpaca's calendar takes either)."""
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise invalid(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def build_reference_router(exchange: PaperExchange) -> APIRouter:
    router = APIRouter()

    @router.get("/clock")
    async def clock() -> dict[str, Any]:
        days = await asyncio.to_thread(nyse)  # the first call builds the calendar: off the loop
        try:
            now = days.clock(exchange.clock.now_ns())
        except OutsideCalendar as error:
            raise AlpacaHTTPError(500, 50010000, str(error)) from None
        return {
            "timestamp": local_iso(now.now_ns),
            "is_open": now.is_open,
            "next_open": local_iso(now.next_open_ns),
            "next_close": local_iso(now.next_close_ns),
        }

    @router.get("/calendar")
    async def calendar(request: Request) -> list[dict[str, Any]]:
        q = request.query_params
        days = await asyncio.to_thread(nyse)
        start = _date_param(q.get("start"), "start") or days.first
        end = _date_param(q.get("end"), "end") or days.last
        if end < start:
            raise invalid(f"end ({end}) is before start ({start})")
        by = choice(q.get("date_type"), "date_type", ("TRADING", "SETTLEMENT"), "TRADING")
        # Settlement is at most two trading days (a week with holidays) after the trading date.
        found = days.days(start - dt.timedelta(days=7), end) if by == "SETTLEMENT" else days.days(start, end)
        if by == "SETTLEMENT":
            found = [d for d in found if start <= d.settlement_date <= end]
        return [
            {
                "date": d.date.isoformat(),
                "open": local_hhmm(d.open_ns, colon=True),
                "close": local_hhmm(d.close_ns, colon=True),
                "session_open": "0400",
                "session_close": "2000",
                "settlement_date": d.settlement_date.isoformat(),
            }
            for d in found
        ]

    @router.get("/assets")
    async def assets(request: Request) -> list[dict[str, Any]]:
        q = request.query_params
        status = choice(q.get("status"), "status", ("active", "inactive", "any"), "any")
        asset_class = choice(
            q.get("asset_class"), "asset_class", ("us_equity", "us_option", "crypto"), "us_equity"
        )
        exchange_name = q.get("exchange")
        wanted = [a for a in (q.get("attributes") or "").split(",") if a]
        found = [asset_json(symbol) for symbol in sorted(exchange.symbols)]
        return [
            a
            for a in found
            if status in ("any", a["status"])
            and asset_class == a["class"]
            and exchange_name in (None, "", a["exchange"])
            and (not wanted or set(wanted) & set(a["attributes"]))
        ]

    @router.get("/assets/{symbol_or_asset_id:path}")
    async def asset(symbol_or_asset_id: str) -> dict[str, Any]:
        symbol = find_asset(exchange.symbols, symbol_or_asset_id)
        if symbol is None:
            raise not_found(f"asset not found for {symbol_or_asset_id}")
        return asset_json(symbol)

    return router
