"""The paper server's REST routes, shaped as Alpaca's ``/v2`` trading API.

Errors are Alpaca's ``{"code": …, "message": …}`` with Alpaca's statuses: 422 for an invalid order
(40010000) or a duplicate ``client_order_id`` (40010001), 403 for insufficient buying power
(40310000), 404 for an unknown order (40410000), 401 for wrong keys (40110000), 429 (42910000) and
503 (50010000) when a fault is injected. Bad input never takes the server down.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from autoquant.brokers.alpaca_mapping import AlpacaPayloadError, parse_time_ns
from autoquant.brokers.paper.alpaca_json import (
    account_json,
    clock_json,
    error_json,
    fill_activities_json,
    order_json,
    position_json,
)
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.brokers.paper.faults import FaultInjector, abort_connection
from autoquant.brokers.settings import Secrets
from autoquant.domain.broker import BrokerOrderState, OrderRequest
from autoquant.errors import BrokerError

CODE_INVALID = 40010000
CODE_UNAUTHORIZED = 40110000
CODE_NOT_FOUND = 40410000
CODE_RATE_LIMIT = 42910000
CODE_SERVER = 50010000

T = TypeVar("T", bound=str)

MAX_ORDERS_PAGE = 500
MAX_ACTIVITIES_PAGE = 100


class AlpacaHTTPError(Exception):
    """Answer the request with Alpaca's error shape."""

    def __init__(self, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(error: AlpacaHTTPError) -> JSONResponse:
    return JSONResponse(
        error_json(error.code, error.message), status_code=error.status, headers=error.headers
    )


def _from_broker_error(error: BrokerError) -> AlpacaHTTPError:
    status = error.status or 422
    return AlpacaHTTPError(
        status, error.code or (CODE_INVALID if status == 422 else status * 100_000), str(error)
    )


def _invalid(message: str) -> AlpacaHTTPError:
    return AlpacaHTTPError(422, CODE_INVALID, message)


def _time_param(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return parse_time_ns(value, name)
    except AlpacaPayloadError as error:
        raise _invalid(str(error)) from None


def _int_param(value: str | None, name: str, default: int, maximum: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise _invalid(f"{name}: {value!r} is not an integer") from None
    if number < 1:
        raise _invalid(f"{name} must be at least 1")
    return min(number, maximum)


def _choice(value: str | None, name: str, choices: tuple[T, ...], default: T) -> T:
    if value is None or value == "":
        return default
    for choice in choices:
        if value == choice:
            return choice
    raise _invalid(f"{name}: {value!r} is not one of {list(choices)}")


def parse_order_body(body: bytes) -> OrderRequest:
    """Alpaca's order JSON as an ``OrderRequest``; numbers are read as exact decimals."""
    try:
        data = json.loads(body, parse_float=Decimal)
    except ValueError:
        raise _invalid("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _invalid("request body must be a JSON object")
    if data.get("notional") is not None:
        raise _invalid("notional orders are not supported by the paper exchange: send qty")
    if data.get("order_class") not in (None, "", "simple"):
        raise _invalid(f"order_class {data['order_class']!r} is not supported")
    fields = {
        "client_order_id": data.get("client_order_id") or str(uuid.uuid4()),
        "symbol": data.get("symbol"),
        "side": data.get("side"),
        "qty": data.get("qty"),
        "order_type": data.get("type", data.get("order_type")),
        "time_in_force": data.get("time_in_force"),
        "limit_price": data.get("limit_price"),
        "stop_price": data.get("stop_price"),
    }
    try:
        return OrderRequest.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "order"
        where = {"order_type": "type"}.get(where, where)
        raise _invalid(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None


def build_router(
    exchange: PaperExchange, faults: FaultInjector, keys: Secrets, *, retry_after_s: float | None
) -> APIRouter:
    """Every ``/v2`` route, behind the fault injector and the key check."""

    async def guard(request: Request) -> None:
        if faults.slow():
            # Take the whole request first: like a venue, the server acts on what it received even
            # if the client stops waiting, so a slow submit is accepted and answered too late.
            await request.body()
            await asyncio.sleep(faults.settings.slow_response_s)
        if faults.rate_limited():
            headers = {"Retry-After": f"{retry_after_s:g}"} if retry_after_s is not None else None
            raise AlpacaHTTPError(429, CODE_RATE_LIMIT, "rate limit exceeded", headers)
        if faults.server_error():
            raise AlpacaHTTPError(503, CODE_SERVER, "service unavailable (injected fault)")
        key = request.headers.get("APCA-API-KEY-ID")
        secret = request.headers.get("APCA-API-SECRET-KEY")
        if key != keys.key_id or secret != keys.secret_key:
            raise AlpacaHTTPError(401, CODE_UNAUTHORIZED, "request is not authorized")

    router = APIRouter(prefix="/v2", dependencies=[Depends(guard)])

    def order_or_404(found: BrokerOrderState | None) -> dict[str, Any]:
        if found is None:
            raise AlpacaHTTPError(404, CODE_NOT_FOUND, "order not found")
        return order_json(found)

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

    @router.get("/clock")
    async def clock() -> dict[str, Any]:
        return clock_json(exchange.clock.now_ns())

    @router.post("/orders")
    async def submit(request: Request) -> Response:
        order = parse_order_body(await request.body())
        try:
            state = exchange.submit(order)
        except BrokerError as error:
            raise _from_broker_error(error) from None
        if faults.drop_after_accept() and await abort_connection(request.scope):
            return Response(status_code=204)  # never written: the connection is gone
        return JSONResponse(order_json(state))

    @router.get("/orders")
    async def list_orders(request: Request) -> list[dict[str, Any]]:
        q = request.query_params
        symbols = [s for s in (q.get("symbols") or "").split(",") if s] or None
        side = q.get("side")
        found = exchange.list_orders(
            status=_choice(q.get("status"), "status", ("open", "closed", "all"), "open"),
            after_ns=_time_param(q.get("after"), "after"),
            until_ns=_time_param(q.get("until"), "until"),
            limit=_int_param(q.get("limit"), "limit", 50, MAX_ORDERS_PAGE),
            symbols=symbols,
            direction=_choice(q.get("direction"), "direction", ("asc", "desc"), "desc"),
        )
        return [order_json(o) for o in found if side is None or o.side.value == side]

    @router.get("/orders:by_client_order_id")
    async def by_client_order_id(client_order_id: str = "") -> dict[str, Any]:
        if not client_order_id:
            raise _invalid("client_order_id is required")
        return order_or_404(exchange.get_by_client_order_id(client_order_id))

    @router.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, Any]:
        return order_or_404(exchange.get_order(order_id))

    @router.delete("/orders/{order_id}", status_code=204)
    async def cancel(order_id: str) -> Response:
        try:
            exchange.cancel(order_id)
        except BrokerError as error:
            raise _from_broker_error(error) from None
        return Response(status_code=204)

    @router.delete("/orders")
    async def cancel_all() -> JSONResponse:
        results = []
        for order_id, status in exchange.cancel_all():
            item: dict[str, Any] = {"id": order_id, "status": status}
            found = exchange.get_order(order_id)
            if found is not None:
                item["body"] = order_json(found)
            results.append(item)
        return JSONResponse(results, status_code=207)

    @router.get("/positions")
    async def positions() -> list[dict[str, Any]]:
        return [position_json(p, exchange.last_price(p.symbol)) for p in exchange.positions()]

    @router.get("/positions/{symbol:path}")
    async def position(symbol: str) -> dict[str, Any]:
        for p in exchange.positions():
            if symbol in (p.symbol, p.symbol.replace("/", "")):
                return position_json(p, exchange.last_price(p.symbol))
        raise AlpacaHTTPError(404, CODE_NOT_FOUND, "position does not exist")

    def activities(request: Request, types: list[str]) -> list[dict[str, Any]]:
        q = request.query_params
        if "FILL" not in types:
            return []
        direction: Literal["asc", "desc"] = _choice(q.get("direction"), "direction", ("asc", "desc"), "desc")
        after = _time_param(q.get("after"), "after")
        until = _time_param(q.get("until"), "until")
        page_size = _int_param(q.get("page_size"), "page_size", MAX_ACTIVITIES_PAGE, MAX_ACTIVITIES_PAGE)
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
