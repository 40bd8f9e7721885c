"""The paper server's REST routes, shaped as Alpaca's ``/v2`` trading API.

Orders are here (submit, list, get, replace, cancel); the account, positions and reference routes
are in ``rest_account``, ``rest_positions`` and ``rest_reference``, all behind one guard (faults,
then keys). Errors are Alpaca's ``{"code": …, "message": …}`` (``http_errors``): 422 for an invalid
order (40010000) or a duplicate ``client_order_id`` (40010001), 403 for insufficient buying power
(40310000), 404 for an unknown order (40410000), 401 for wrong keys (40110000), 429 (42910000) and
503 (50010000) when a fault is injected. Bad input never takes the server down.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from autoquant.brokers.paper.alpaca_json import order_json
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.brokers.paper.faults import FaultInjector, abort_connection
from autoquant.brokers.paper.http_errors import (
    CODE_INVALID,
    CODE_NOT_FOUND,
    CODE_RATE_LIMIT,
    CODE_SERVER,
    CODE_UNAUTHORIZED,
    AlpacaHTTPError,
    choice,
    error_response,
    from_broker_error,
    int_param,
    invalid,
    time_param,
)
from autoquant.brokers.paper.rest_account import build_account_router
from autoquant.brokers.paper.rest_positions import build_positions_router
from autoquant.brokers.paper.rest_reference import build_reference_router
from autoquant.brokers.settings import Secrets
from autoquant.domain.broker import BrokerOrderState, OrderRequest
from autoquant.domain.values import OrderType
from autoquant.errors import BrokerError

__all__ = ["CODE_INVALID", "AlpacaHTTPError", "build_router", "error_response", "parse_order_body"]

MAX_ORDERS_PAGE = 500
MAX_CLIENT_ORDER_ID = 128
REPLACE_FIELDS = frozenset(
    {"qty", "time_in_force", "limit_price", "client_order_id", "stop_price", "trail", "notional"}
)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body, parse_float=Decimal)
    except ValueError:
        raise invalid("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise invalid("request body must be a JSON object")
    return data


def _order_request(fields: dict[str, Any]) -> OrderRequest:
    client_order_id = fields.get("client_order_id")
    if isinstance(client_order_id, str) and len(client_order_id) > MAX_CLIENT_ORDER_ID:
        raise invalid(f"client_order_id must be at most {MAX_CLIENT_ORDER_ID} characters")
    try:
        return OrderRequest.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "order"
        where = {"order_type": "type"}.get(where, where)
        raise invalid(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None


def parse_order_body(body: bytes) -> OrderRequest:
    """Alpaca's order JSON as an ``OrderRequest``; numbers are read as exact decimals."""
    data = _json_object(body)
    if data.get("order_class") not in (None, "", "simple"):
        raise invalid(f"order_class {data['order_class']!r} is not supported")
    # Both required by Alpaca's spec (CreateOrderRequest): no default stands in for either.
    if data.get("time_in_force") in (None, ""):
        raise invalid("time_in_force is required: day, gtc, opg, cls, ioc or fok")
    if data.get("type", data.get("order_type")) in (None, ""):
        raise invalid("type is required: market, limit, stop, stop_limit or trailing_stop")
    extended = data.get("extended_hours")
    if extended is not None and not isinstance(extended, bool):
        raise invalid("extended_hours must be true or false")
    return _order_request(
        {
            "client_order_id": data.get("client_order_id") or str(uuid.uuid4()),
            "symbol": data.get("symbol"),
            "side": data.get("side"),
            "qty": data.get("qty"),
            "order_type": data.get("type", data.get("order_type")),
            "time_in_force": data.get("time_in_force"),
            "limit_price": data.get("limit_price"),
            "stop_price": data.get("stop_price"),
            "notional": data.get("notional"),
            "trail_price": data.get("trail_price"),
            "trail_percent": data.get("trail_percent"),
            "extended_hours": extended,
        }
    )


def parse_replace_body(body: bytes, old: BrokerOrderState) -> OrderRequest:
    """Alpaca's replace JSON (``PATCH /v2/orders/{id}``) over ``old``: the new order's terms."""
    data = _json_object(body)
    trailing = old.order_type is OrderType.TRAILING_STOP
    if data.get("notional") is not None:
        raise invalid("notional can be changed only on an IPO indication of interest")
    if data.get("trail") is not None and not trailing:
        raise invalid(f"trail cannot be changed on a {old.order_type.value} order")
    if data.get("stop_price") is not None and (old.stop_price is None or trailing):
        raise invalid(f"stop_price cannot be set on a {old.order_type.value} order")
    unknown = set(data) - REPLACE_FIELDS
    if unknown:
        raise invalid(f"{sorted(unknown)[0]}: not a field of a replace request")
    if data.get("limit_price") is not None and old.limit_price is None:
        raise invalid(f"limit_price cannot be set on a {old.order_type.value} order")
    return _order_request(
        {
            "client_order_id": data.get("client_order_id") or str(uuid.uuid4()),
            "symbol": old.symbol,
            "side": old.side,
            "order_type": old.order_type,
            "time_in_force": data.get("time_in_force") or old.time_in_force,
            "limit_price": _changed(data, "limit_price", old.limit_price),
            "stop_price": None if trailing else _changed(data, "stop_price", old.stop_price),
            "notional": old.notional,
            "qty": None if old.notional is not None else _changed(data, "qty", old.qty),
            **_trail(data.get("trail"), old),
            "extended_hours": old.extended_hours,
        }
    )


def _changed(data: dict[str, Any], name: str, old: Decimal | None) -> Any:
    return data.get(name) if data.get(name) is not None else old


def _trail(trail: Any, old: BrokerOrderState) -> dict[str, Any]:
    """A trailing stop's new trail: ``trail`` replaces whichever of trail_price and trail_percent it had."""
    if old.order_type is not OrderType.TRAILING_STOP:
        return {}
    if old.trail_price is not None:
        return {"trail_price": old.trail_price if trail is None else trail}
    return {"trail_percent": old.trail_percent if trail is None else trail}


def make_guard(
    faults: FaultInjector, keys: Secrets, *, retry_after_s: float | None
) -> Callable[[Request], Awaitable[None]]:
    """The check every REST request passes first: injected faults, then the keys."""

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

    return guard


def build_router(
    exchange: PaperExchange, faults: FaultInjector, guard: Callable[[Request], Awaitable[None]]
) -> APIRouter:
    """Every ``/v2`` trading route, behind ``guard``."""
    router = APIRouter(prefix="/v2", dependencies=[Depends(guard)])

    def with_links(orders: list[BrokerOrderState]) -> list[dict[str, Any]]:
        links = exchange.links([o.broker_order_id for o in orders])
        return [order_json(o, links.get(o.broker_order_id)) for o in orders]

    def order_or_404(found: BrokerOrderState | None) -> dict[str, Any]:
        if found is None:
            raise AlpacaHTTPError(404, CODE_NOT_FOUND, "order not found")
        return with_links([found])[0]

    @router.post("/orders")
    async def submit(request: Request) -> Response:
        order = parse_order_body(await request.body())
        try:
            state = exchange.submit(order)
        except BrokerError as error:
            raise from_broker_error(error) from None
        if faults.drop_after_accept() and await abort_connection(request.scope):
            return Response(status_code=204)  # never written: the connection is gone
        return JSONResponse(order_json(state))

    @router.get("/orders")
    async def list_orders(request: Request) -> list[dict[str, Any]]:
        q = request.query_params
        symbols = [s for s in (q.get("symbols") or "").split(",") if s] or None
        side = choice(q.get("side"), "side", ("buy", "sell", "any"), "any")
        limit = int_param(q.get("limit"), "limit", 50, MAX_ORDERS_PAGE)
        found = exchange.list_orders(
            status=choice(q.get("status"), "status", ("open", "closed", "all"), "open"),
            after_ns=time_param(q.get("after"), "after"),
            until_ns=time_param(q.get("until"), "until"),
            # The side filter comes after the query, so the limit must too.
            limit=limit if side == "any" else None,
            symbols=symbols,
            direction=choice(q.get("direction"), "direction", ("asc", "desc"), "desc"),
        )
        return with_links([o for o in found if side == "any" or o.side.value == side][:limit])

    @router.get("/orders:by_client_order_id")
    async def by_client_order_id(client_order_id: str = "") -> dict[str, Any]:
        if not client_order_id:
            raise invalid("client_order_id is required")
        return order_or_404(exchange.get_by_client_order_id(client_order_id))

    @router.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, Any]:
        return order_or_404(exchange.get_order(order_id))

    @router.patch("/orders/{order_id}")
    async def replace(request: Request, order_id: str) -> dict[str, Any]:
        old = exchange.get_order(order_id)
        if old is None:
            raise AlpacaHTTPError(404, CODE_NOT_FOUND, "order not found")
        try:
            state = exchange.replace(order_id, parse_replace_body(await request.body(), old))
        except BrokerError as error:
            raise from_broker_error(error) from None
        return order_or_404(state)

    @router.delete("/orders/{order_id}", status_code=204)
    async def cancel(order_id: str) -> Response:
        try:
            exchange.cancel(order_id)
        except BrokerError as error:
            raise from_broker_error(error) from None
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

    router.include_router(build_account_router(exchange))
    router.include_router(build_positions_router(exchange))
    router.include_router(build_reference_router(exchange))
    return router
