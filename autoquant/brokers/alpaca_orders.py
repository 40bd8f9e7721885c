"""The body of ``POST /v2/orders`` for an ``OrderRequest``, shaped by alpaca-py's public request models.

alpaca-py's ``MarketOrderRequest`` / ``LimitOrderRequest`` / ``StopOrderRequest`` /
``StopLimitOrderRequest`` are the published shape of an order: they check the combination of fields
(a limit order has a price, qty or notional, the enums' words) and ``to_request_fields()`` names them
as Alpaca expects. They hold quantities and prices as floats, though, and money is exact here: after
the model has checked the request, ``qty``, ``limit_price`` and ``stop_price`` are sent as our exact
decimal strings (Alpaca accepts strings for all three).

Venue rules live here, not in strategies: Alpaca takes only ``gtc`` and ``ioc`` for crypto, so a
``day`` order for a crypto pair (``BTC/USD``) is sent as ``gtc``.
"""

from __future__ import annotations

import warnings
from enum import Enum
from typing import Any

from autoquant.domain.broker import OrderRequest
from autoquant.domain.values import OrderType, TimeInForce

with warnings.catch_warnings():
    # alpaca.trading's package __init__ imports its TradingStream, built on the deprecated
    # websockets.legacy, which warns at import; nothing here uses it.
    warnings.filterwarnings("ignore", message="websockets.legacy is deprecated", category=DeprecationWarning)
    from alpaca.trading.enums import OrderSide
    from alpaca.trading.enums import TimeInForce as AlpacaTimeInForce
    from alpaca.trading.requests import (
        LimitOrderRequest,
        MarketOrderRequest,
        StopLimitOrderRequest,
        StopOrderRequest,
    )

#: What Alpaca accepts for crypto orders.
_CRYPTO_TIME_IN_FORCE = frozenset({TimeInForce.GTC, TimeInForce.IOC})


def venue_time_in_force(symbol: str, time_in_force: TimeInForce) -> TimeInForce:
    """The time in force Alpaca takes for ``symbol``: crypto pairs (``BTC/USD``) know only gtc and ioc,
    so ``day`` (and ``fok``) become ``gtc``; stocks keep what was asked."""
    if "/" in symbol and time_in_force not in _CRYPTO_TIME_IN_FORCE:
        return TimeInForce.GTC
    return time_in_force


def order_body(request: OrderRequest) -> dict[str, Any]:
    """The JSON body Alpaca takes for ``request``; ``qty`` and ``limit_price`` exact decimal strings."""
    common: dict[str, Any] = {
        "symbol": request.symbol,
        "qty": float(request.qty),
        "side": OrderSide(request.side.value),
        "time_in_force": AlpacaTimeInForce(venue_time_in_force(request.symbol, request.time_in_force).value),
        "client_order_id": request.client_order_id,
    }
    model: MarketOrderRequest | LimitOrderRequest | StopOrderRequest | StopLimitOrderRequest
    limit, stop = request.limit_price, request.stop_price  # OrderRequest guarantees what the type needs
    if request.order_type is OrderType.LIMIT and limit is not None:
        model = LimitOrderRequest(**common, limit_price=float(limit))
    elif request.order_type is OrderType.STOP and stop is not None:
        model = StopOrderRequest(**common, stop_price=float(stop))
    elif request.order_type is OrderType.STOP_LIMIT and limit is not None and stop is not None:
        model = StopLimitOrderRequest(**common, limit_price=float(limit), stop_price=float(stop))
    else:
        model = MarketOrderRequest(**common)
    body = {k: v.value if isinstance(v, Enum) else v for k, v in model.to_request_fields().items()}
    body["qty"] = str(request.qty)
    if limit is not None:
        body["limit_price"] = str(limit)
    if stop is not None:
        body["stop_price"] = str(stop)
    return body


def replace_body(request: OrderRequest) -> dict[str, Any]:
    """The JSON body of Alpaca's ``PATCH /v2/orders/{id}``: the new terms and the new client order id
    (the order type, symbol and side cannot change); money as exact decimal strings."""
    body: dict[str, Any] = {
        "qty": str(request.qty),
        "time_in_force": venue_time_in_force(request.symbol, request.time_in_force).value,
        "client_order_id": request.client_order_id,
    }
    if request.limit_price is not None:
        body["limit_price"] = str(request.limit_price)
    if request.stop_price is not None:
        body["stop_price"] = str(request.stop_price)
    return body
