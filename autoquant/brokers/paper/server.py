"""The paper exchange as an Alpaca-compatible ASGI app (served by ``autoquant paper-server``).

The real alpaca-py ``TradingClient`` and our ``AlpacaBroker`` work against it unchanged with
``url_override``: REST under ``/v2`` (see ``rest.py``), the ``trade_updates`` websocket at ``/stream``
(``stream.py``), faults on request (``faults.py``), Alpaca's market-data websocket (bars) at
``/v2/iex``, ``/v2/sip`` and ``/v1beta3/crypto/us`` (``market_stream.py``), and Alpaca's historical
bars REST (``rest_bars.py``) from the same price path the server streams (``prices.py``). The
running server (the exchange, its pump, a price feed and uvicorn as one unit) is
``autoquant.runtime.paper_server``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from autoquant.brokers.paper.engine import PaperExchange
from autoquant.brokers.paper.faults import TRANSPORT_KEY, FaultInjector
from autoquant.brokers.paper.http_errors import (
    CODE_INVALID,
    CODE_METHOD_NOT_ALLOWED,
    CODE_NOT_FOUND,
    AlpacaHTTPError,
    error_response,
)
from autoquant.brokers.paper.market_stream import CRYPTO_PATH, STOCK_PATHS, MarketDataHub
from autoquant.brokers.paper.prices import PricePath
from autoquant.brokers.paper.rate_limit import RateLimitWindow
from autoquant.brokers.paper.rest import build_router, make_guard
from autoquant.brokers.paper.rest_bars import build_bars_router
from autoquant.brokers.paper.stream import serve_trade_updates
from autoquant.brokers.settings import FaultSettings, Secrets


class PaperApp(FastAPI):
    """FastAPI that remembers the connection's transport, so a fault can reset it (see faults.py),
    and puts Alpaca's rate-limit headers on every HTTP answer (see rate_limit.py)."""

    rate_limit: RateLimitWindow | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            scope[TRANSPORT_KEY] = transport
        window = self.rate_limit
        if scope["type"] != "http" or window is None:
            await super().__call__(scope, receive, send)
            return
        headers = [(k.lower().encode(), v.encode()) for k, v in window.count().items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def create_app(
    exchange: PaperExchange,
    faults: FaultSettings,
    keys: Secrets,
    *,
    seed: int = 7,
    retry_after_s: float | None = None,
    market: MarketDataHub | None = None,
    prices: PricePath | None = None,
) -> FastAPI:
    """The Alpaca-shaped app over ``exchange``. ``retry_after_s`` adds Retry-After to injected 429s;
    ``market`` is the hub the market-data websockets join (a fresh, silent one if not given);
    ``prices`` is the path historical bars come from (one-minute bars of ``seed`` if not given)."""
    injector = FaultInjector(faults, seed)
    app = PaperApp(title="autoquant paper exchange", docs_url=None, redoc_url=None, openapi_url=None)

    async def alpaca_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, AlpacaHTTPError)
        return error_response(error)

    async def invalid_request(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ())) or "request"
        return error_response(AlpacaHTTPError(422, CODE_INVALID, f"{where}: {first.get('msg')}"))

    async def http_error(_: Request, error: Exception) -> JSONResponse:
        # Starlette's own 404 (no such route) and 405 (a method the route does not take), in
        # Alpaca's shape rather than FastAPI's {"detail": …}.
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 405:
            answer = AlpacaHTTPError(405, CODE_METHOD_NOT_ALLOWED, "method not allowed")
        elif error.status_code == 404:
            answer = AlpacaHTTPError(404, CODE_NOT_FOUND, "endpoint not found")
        else:
            answer = AlpacaHTTPError(error.status_code, error.status_code * 100_000, str(error.detail))
        answer.headers.update(error.headers or {})
        return error_response(answer)

    app.add_exception_handler(AlpacaHTTPError, alpaca_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.rate_limit = RateLimitWindow(exchange.clock)
    guard = make_guard(injector, keys, retry_after_s=retry_after_s)
    app.include_router(build_router(exchange, injector, guard))
    app.include_router(build_bars_router(exchange, prices or PricePath(seed, 60 * 1_000_000_000), guard))

    @app.websocket("/stream")
    async def trade_updates(ws: WebSocket) -> None:
        await serve_trade_updates(ws, exchange, keys, injector)

    hub = market or MarketDataHub(keys)

    async def stock_bars(ws: WebSocket) -> None:
        await hub.serve(ws, "stocks")

    async def crypto_bars(ws: WebSocket) -> None:
        await hub.serve(ws, "crypto")

    for path in STOCK_PATHS:
        app.add_api_websocket_route(path, stock_bars)
    app.add_api_websocket_route(CRYPTO_PATH, crypto_bars)
    return app
