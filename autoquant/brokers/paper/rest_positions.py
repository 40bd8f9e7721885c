"""Position routes of the paper server: list, one (by symbol or asset id), close one, close all.

Closing is a market order against the position, as at Alpaca: ``DELETE /v2/positions/{symbol}``
closes all of it, or ``qty`` shares, or ``percentage`` of it (a whole-share position sells whole
shares, rounded down), and answers the order (200). ``DELETE /v2/positions`` answers 207 with one
``{symbol, status, body}`` per position; with ``cancel_orders=true`` it cancels every open order
first, so shares held by open sells are free to go.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from autoquant.brokers.paper.alpaca_json import order_json, position_json
from autoquant.brokers.paper.assets import find_asset
from autoquant.brokers.paper.closing import closing_request
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.brokers.paper.http_errors import (
    CODE_FORBIDDEN,
    AlpacaHTTPError,
    choice,
    decimal_param,
    from_broker_error,
    invalid,
    not_found,
)
from autoquant.domain.broker import BrokerOrderState, BrokerPosition
from autoquant.errors import BrokerError

NINE_PLACES = Decimal("0.000000001")


def _position(exchange: PaperExchange, symbol_or_asset_id: str) -> BrokerPosition:
    symbol = find_asset(exchange.symbols, symbol_or_asset_id)
    for position in exchange.positions():
        if position.symbol == symbol:
            return position
    raise not_found("position does not exist")


def closing_qty(position: BrokerPosition, qty: Decimal | None, percentage: Decimal | None) -> Decimal:
    """How much of ``position`` a close sells (or buys back): all, ``qty``, or ``percentage`` of it."""
    held = abs(position.qty)
    if qty is not None and percentage is not None:
        raise invalid("qty and percentage cannot both be given: send one")
    if percentage is not None:
        if not Decimal(0) < percentage <= 100:
            raise invalid(f"percentage must be more than 0 and at most 100, got {percentage}")
        step = Decimal(1) if held == held.to_integral_value() else NINE_PLACES
        qty = (held * percentage / 100).quantize(step, rounding=ROUND_DOWN)
        if qty == 0:
            raise invalid(f"{percentage}% of {held} rounds down to nothing: ask for more")
    if qty is None:
        return held
    if qty <= 0:
        raise invalid(f"qty must be positive, got {qty}")
    if qty > held:
        raise AlpacaHTTPError(
            403, CODE_FORBIDDEN, f"insufficient qty available for order (requested: {qty}, available: {held})"
        )
    return qty


def close_position(exchange: PaperExchange, position: BrokerPosition, qty: Decimal) -> BrokerOrderState:
    """Submit the market order that closes ``qty`` of ``position``."""
    try:
        return exchange.submit(closing_request(position, qty))
    except BrokerError as error:
        raise from_broker_error(error) from None


def build_positions_router(exchange: PaperExchange) -> APIRouter:
    router = APIRouter()

    @router.get("/positions")
    async def positions() -> list[dict[str, Any]]:
        return [position_json(p, exchange.last_price(p.symbol)) for p in exchange.positions()]

    @router.get("/positions/{symbol_or_asset_id:path}")
    async def position(symbol_or_asset_id: str) -> dict[str, Any]:
        found = _position(exchange, symbol_or_asset_id)
        return position_json(found, exchange.last_price(found.symbol))

    @router.delete("/positions/{symbol_or_asset_id:path}")
    async def close_one(request: Request, symbol_or_asset_id: str) -> dict[str, Any]:
        q = request.query_params
        found = _position(exchange, symbol_or_asset_id)
        qty = closing_qty(
            found, decimal_param(q.get("qty"), "qty"), decimal_param(q.get("percentage"), "percentage")
        )
        return order_json(close_position(exchange, found, qty))

    @router.delete("/positions")
    async def close_all(request: Request) -> JSONResponse:
        # alpaca-py writes Python's True; Alpaca reads booleans case-blind.
        wanted = (request.query_params.get("cancel_orders") or "").lower()
        cancel = choice(wanted, "cancel_orders", ("true", "false"), "false")
        if cancel == "true":
            exchange.cancel_all()
        results: list[dict[str, Any]] = []
        for held in exchange.positions():
            try:
                order = close_position(exchange, held, abs(held.qty))
            except AlpacaHTTPError as error:
                results.append(
                    {
                        "symbol": held.symbol,
                        "status": error.status,
                        "body": {"code": error.code, "message": error.message},
                    }
                )
                continue
            results.append({"symbol": held.symbol, "status": 200, "body": order_json(order)})
        return JSONResponse(results, status_code=207)

    return router
