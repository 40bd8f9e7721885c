"""The body of ``POST /v2/orders`` for an ``OrderRequest``, shaped by alpaca-py's public request models.

alpaca-py's ``MarketOrderRequest`` / ``LimitOrderRequest`` / ``StopOrderRequest`` /
``StopLimitOrderRequest`` / ``TrailingStopOrderRequest`` are the published shape of an order: they
check the combination of fields (a limit order has a price, qty or notional, the enums' words) and
``to_request_fields()`` names them as Alpaca expects. They hold quantities and prices as floats,
though, and money is exact here: after the model has checked the request, ``qty``, ``notional``,
``limit_price``, ``stop_price``, ``trail_price`` and ``trail_percent`` are sent as our exact decimal
strings (Alpaca accepts strings).

Venue rules live here, not in strategies: Alpaca takes only ``gtc`` and ``ioc`` for crypto, so a
``day`` order for a crypto pair (``BTC/USD``) is sent as ``gtc`` (``order_rules.venue_time_in_force``,
which the in-process ``PaperBroker`` applies too).
"""

from __future__ import annotations

import warnings
from enum import Enum
from typing import Any

from autoquant.brokers.paper.order_rules import venue_time_in_force
from autoquant.domain.broker import OrderRequest
from autoquant.domain.values import OrderType

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
        TrailingStopOrderRequest,
    )


def order_body(request: OrderRequest) -> dict[str, Any]:
    """The JSON body Alpaca takes for ``request``; every amount an exact decimal string."""
    common: dict[str, Any] = {
        "symbol": request.symbol,
        "side": OrderSide(request.side.value),
        "time_in_force": AlpacaTimeInForce(venue_time_in_force(request.symbol, request.time_in_force).value),
        "client_order_id": request.client_order_id,
        "extended_hours": request.extended_hours or None,
    }
    if request.qty is not None:
        common["qty"] = float(request.qty)
    if request.notional is not None:
        common["notional"] = float(request.notional)
    model: (
        MarketOrderRequest
        | LimitOrderRequest
        | StopOrderRequest
        | StopLimitOrderRequest
        | TrailingStopOrderRequest
    )
    limit, stop = request.limit_price, request.stop_price  # OrderRequest guarantees what the type needs
    kind = request.order_type
    if kind is OrderType.LIMIT and limit is not None:
        model = LimitOrderRequest(**common, limit_price=float(limit))
    elif kind is OrderType.STOP and stop is not None:
        model = StopOrderRequest(**common, stop_price=float(stop))
    elif kind is OrderType.STOP_LIMIT and limit is not None and stop is not None:
        model = StopLimitOrderRequest(**common, limit_price=float(limit), stop_price=float(stop))
    elif kind is OrderType.TRAILING_STOP:
        trail = {"trail_price": request.trail_price, "trail_percent": request.trail_percent}
        model = TrailingStopOrderRequest(**common, **{k: float(v) for k, v in trail.items() if v is not None})
    else:
        model = MarketOrderRequest(**common)
    body = {k: v.value if isinstance(v, Enum) else v for k, v in model.to_request_fields().items()}
    exact = {
        "qty": request.qty,
        "notional": request.notional,
        "limit_price": limit,
        "stop_price": stop,
        "trail_price": request.trail_price,
        "trail_percent": request.trail_percent,
    }
    body.update({name: str(value) for name, value in exact.items() if value is not None})
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
    # A trailing stop's one ``trail`` field: its trail_price or trail_percent, whichever it has.
    trail = request.trail_price if request.trail_price is not None else request.trail_percent
    if trail is not None:
        body["trail"] = str(trail)
    return body
