"""Account routes of the paper server: the account, its configurations, its portfolio history and
its activities (fills).

Configurations keep Alpaca's names and values. What the paper venue honours: ``suspend_trade``
(true refuses new orders with 403); ``no_shorting`` is always true and ``max_margin_multiplier``
always ``"1"`` (the venue neither sells short nor lends), so asking otherwise is a 422. The other
settings are kept and answered back, as Alpaca does, without changing how orders are handled.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Request

from autoquant.brokers.paper.alpaca_json import account_json, fill_activities_json
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.brokers.paper.http_errors import choice, int_param, invalid, time_param
from autoquant.brokers.paper.portfolio_history import HistoryRequestError, history_json, parse_request

MAX_ACTIVITIES_PAGE = 100

DEFAULT_CONFIGURATION: dict[str, Any] = {
    "dtbp_check": "entry",
    "trade_confirm_email": "all",
    "suspend_trade": False,
    "no_shorting": True,
    "fractional_trading": True,
    "max_margin_multiplier": "1",
    "max_options_trading_level": 0,
    "pdt_check": "entry",
    "ptp_no_exception_entry": False,
    "disable_overnight_trading": False,
}
_ENUMS: dict[str, tuple[Any, ...]] = {
    "dtbp_check": ("both", "entry", "exit"),
    "pdt_check": ("both", "entry", "exit"),
    "trade_confirm_email": ("all", "none"),
    "max_margin_multiplier": ("1",),
    "max_options_trading_level": (0, 1, 2, 3),
    "no_shorting": (True,),
}
_FIXED_WHY = {
    "max_margin_multiplier": "the paper exchange lends no margin",
    "no_shorting": "the paper exchange never sells short",
}


def merged_configuration(current: dict[str, Any], body: bytes) -> dict[str, Any]:
    """``current`` with the PATCH body's changes, each checked against Alpaca's values."""
    try:
        changes = json.loads(body or b"{}")
    except ValueError:
        raise invalid("request body is not valid JSON") from None
    if not isinstance(changes, dict):
        raise invalid("request body must be a JSON object")
    merged = {**DEFAULT_CONFIGURATION, **current}
    for name, value in changes.items():
        if name not in DEFAULT_CONFIGURATION:
            raise invalid(f"{name}: not an account configuration (known: {sorted(DEFAULT_CONFIGURATION)})")
        allowed = _ENUMS.get(name)
        if allowed is None and not isinstance(value, bool):
            raise invalid(f"{name}: {value!r} must be true or false")
        if allowed is not None and (
            value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool)
        ):
            why = f" ({_FIXED_WHY[name]})" if name in _FIXED_WHY else ""
            raise invalid(f"{name}: {value!r} is not one of {list(allowed)}{why}")
        merged[name] = value
    return merged


def build_account_router(exchange: PaperExchange) -> APIRouter:
    router = APIRouter()

    @router.get("/account")
    async def account() -> dict[str, Any]:
        long_value = short_value = Decimal(0)
        for position in exchange.positions():
            value = position.qty * (exchange.last_price(position.symbol) or position.avg_entry_price)
            if value >= 0:
                long_value += value
            else:
                short_value += value
        return account_json(exchange.account(), long_value=long_value, short_value=short_value)

    @router.get("/account/configurations")
    async def configurations() -> dict[str, Any]:
        return {**DEFAULT_CONFIGURATION, **exchange.configuration()}

    @router.patch("/account/configurations")
    async def configure(request: Request) -> dict[str, Any]:
        merged = merged_configuration(exchange.configuration(), await request.body())
        exchange.configure(merged)
        return merged

    @router.get("/account/portfolio/history")
    async def portfolio_history(request: Request) -> dict[str, Any]:
        q = request.query_params
        try:
            wanted = parse_request(
                period=q.get("period"),
                timeframe=q.get("timeframe"),
                start_ns=time_param(q.get("start"), "start"),
                end_ns=time_param(q.get("end"), "end"),
                now_ns=exchange.clock.now_ns(),
            )
        except HistoryRequestError as error:
            raise invalid(str(error)) from None
        return history_json(wanted, exchange.equity_history())

    def activities(request: Request, types: list[str]) -> list[dict[str, Any]]:
        q = request.query_params
        if "FILL" not in types:
            return []
        direction: Literal["asc", "desc"] = choice(q.get("direction"), "direction", ("asc", "desc"), "desc")
        after = time_param(q.get("after"), "after")
        until = time_param(q.get("until"), "until")
        page_size = int_param(q.get("page_size"), "page_size", MAX_ACTIVITIES_PAGE, MAX_ACTIVITIES_PAGE)
        every = exchange.fills()
        orders = {
            order_id: found
            for order_id in {f.broker_order_id for f in every if f.broker_order_id}
            if (found := exchange.get_order(order_id)) is not None
        }
        rows = fill_activities_json(every, orders)
        times = [f.broker_ts_ns if f.broker_ts_ns is not None else f.local_ts_ns for f in every]
        rows = [
            row
            for row, ts in zip(rows, times, strict=True)
            if (after is None or ts > after) and (until is None or ts <= until)
        ]
        if direction == "desc":
            rows.reverse()
        token = q.get("page_token")
        if token:
            ids = [row["id"] for row in rows]
            rows = rows[ids.index(token) + 1 :] if token in ids else []
        return rows[:page_size]

    @router.get("/account/activities")
    async def all_activities(request: Request, activity_types: str = "") -> list[dict[str, Any]]:
        types = [t.strip().upper() for t in activity_types.split(",") if t.strip()] or ["FILL"]
        return activities(request, types)

    @router.get("/account/activities/{activity_type}")
    async def typed_activities(request: Request, activity_type: str) -> list[dict[str, Any]]:
        return activities(request, [activity_type.upper()])

    return router
