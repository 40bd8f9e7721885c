"""The body of ``POST /v2/orders`` for an ``OrderRequest``, shaped by alpaca-py's public request models.

alpaca-py's ``MarketOrderRequest`` / ``LimitOrderRequest`` are the published shape of an order: they
check the combination of fields (a limit order has a price, qty or notional, the enums' words) and
``to_request_fields()`` names them as Alpaca expects. They hold quantities and prices as floats,
though, and money is exact here: after the model has checked the request, ``qty`` and
``limit_price`` are sent as our exact decimal strings (Alpaca accepts strings for both).
"""

from __future__ import annotations

import warnings
from enum import Enum
from typing import Any

from autoquant.domain.broker import OrderRequest
from autoquant.domain.values import OrderType

with warnings.catch_warnings():
    # alpaca.trading's package __init__ imports its TradingStream, built on the deprecated
    # websockets.legacy, which warns at import; nothing here uses it.
    warnings.filterwarnings("ignore", message="websockets.legacy is deprecated", category=DeprecationWarning)
    from alpaca.trading.enums import OrderSide
    from alpaca.trading.enums import TimeInForce as AlpacaTimeInForce
    from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest


def order_body(request: OrderRequest) -> dict[str, Any]:
    """The JSON body Alpaca takes for ``request``; ``qty`` and ``limit_price`` exact decimal strings."""
    common: dict[str, Any] = {
        "symbol": request.symbol,
        "qty": float(request.qty),
        "side": OrderSide(request.side.value),
        "time_in_force": AlpacaTimeInForce(request.time_in_force.value),
        "client_order_id": request.client_order_id,
    }
    model: MarketOrderRequest | LimitOrderRequest
    if request.order_type is OrderType.LIMIT:
        assert request.limit_price is not None  # OrderRequest guarantees it
        model = LimitOrderRequest(**common, limit_price=float(request.limit_price))
    else:
        model = MarketOrderRequest(**common)
    body = {k: v.value if isinstance(v, Enum) else v for k, v in model.to_request_fields().items()}
    body["qty"] = str(request.qty)
    if request.limit_price is not None:
        body["limit_price"] = str(request.limit_price)
    return body
