"""The paper exchange served as an Alpaca-compatible API on loopback (``autoquant paper-server``).

The real alpaca-py ``TradingClient`` and our ``AlpacaBroker`` work against it unchanged with
``url_override``: REST under ``/v2`` (see ``rest.py``), the ``trade_updates`` websocket at ``/stream``
(``stream.py``), faults on request (``faults.py``), and Alpaca's market-data websocket (bars) at
``/v2/iex``, ``/v2/sip`` and ``/v1beta3/crypto/us`` (``market_stream.py``). A ``PaperServer`` owns
everything that runs: the exchange, its pump (``PaperBroker.run``: fills arrive with the configured
latency), a seeded random walk feeding it (and the market-data subscribers) a bar per symbol every
``marketdata.bar_seconds``, and uvicorn. It starts and stops as one unit, so tests and the daemon's
end-to-end runs can hold one in-process; ``serve`` / ``main`` run it as a process that prints
``paper-server listening on http://HOST:PORT`` once it accepts connections (port 0 picks a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from autoquant.brokers.paper.broker import PaperBroker
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.brokers.paper.faults import TRANSPORT_KEY, FaultInjector
from autoquant.brokers.paper.market_stream import CRYPTO_PATH, STOCK_PATHS, MarketDataHub
from autoquant.brokers.paper.prices import RandomWalk
from autoquant.brokers.paper.rest import CODE_INVALID, AlpacaHTTPError, build_router, error_response
from autoquant.brokers.paper.stream import serve_trade_updates
from autoquant.config import Config, FaultSettings, Secrets, alpaca_secrets, load
from autoquant.domain.clock import Clock, SystemClock
from autoquant.errors import ConfigError

LISTENING = "paper-server listening on"
START_TIMEOUT_S = 10.0


class PaperApp(FastAPI):
    """FastAPI that remembers the connection's transport, so a fault can reset it (see faults.py)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            scope[TRANSPORT_KEY] = transport
        await super().__call__(scope, receive, send)


def create_app(
    exchange: PaperExchange,
    faults: FaultSettings,
    keys: Secrets,
    *,
    seed: int = 7,
    retry_after_s: float | None = None,
    market: MarketDataHub | None = None,
) -> FastAPI:
    """The Alpaca-shaped app over ``exchange``. ``retry_after_s`` adds Retry-After to injected 429s;
    ``market`` is the hub the market-data websockets join (a fresh, silent one if not given)."""
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

    app.add_exception_handler(AlpacaHTTPError, alpaca_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.include_router(build_router(exchange, injector, keys, retry_after_s=retry_after_s))

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


class _Uvicorn(uvicorn.Server):
    """uvicorn without its signal handlers: the owner of the ``PaperServer`` decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class PaperServer:
    """A running paper server: ``async with PaperServer(config, keys) as server: server.url``."""

    def __init__(
        self,
        config: Config,
        keys: Secrets,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        feed_prices: bool = True,
        retry_after_s: float | None = None,
    ) -> None:
        self.config = config
        self.host = host
        self.clock: Clock = clock or SystemClock()
        self.exchange = PaperExchange(config.paper, self.clock, config.marketdata.symbols)
        #: Market-data subscribers; the price feed publishes to it, tests may too.
        self.market = MarketDataHub(keys)
        self.app = create_app(
            self.exchange,
            config.paper.faults,
            keys,
            seed=config.paper.seed,
            retry_after_s=retry_after_s,
            market=self.market,
        )
        self._pump = PaperBroker(self.exchange)
        self._feed_prices = feed_prices
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets created with it, and without
        # it Nagle meets delayed ACKs and every kept-alive response waits ~40 ms.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        self._uvicorn = _Uvicorn(
            uvicorn.Config(
                self.app,
                log_level="warning",
                http="h11",
                ws="websockets-sansio",
                lifespan="off",
                timeout_graceful_shutdown=2,
            )
        )
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stream_url(self) -> str:
        return f"ws://{self.host}:{self.port}/stream"

    @property
    def market_data_url(self) -> str:
        """The base of the market-data websockets (``[marketdata] url``): append ``/v2/iex`` etc."""
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> None:
        serving = asyncio.create_task(self._uvicorn.serve(sockets=[self._socket]), name="paper-uvicorn")
        self._tasks = [serving, asyncio.create_task(self._pump.run(), name="paper-pump")]
        if self._feed_prices:
            self._tasks.append(asyncio.create_task(self._price_feed(), name="paper-prices"))
        async with asyncio.timeout(START_TIMEOUT_S):
            while not self._uvicorn.started:
                if serving.done():
                    await serving  # raises what stopped it
                    raise RuntimeError("uvicorn exited before it started")
                await asyncio.sleep(0.01)

    async def wait_closed(self) -> None:
        """Until uvicorn stops serving (``stop()`` or a fatal error)."""
        if self._tasks:
            await asyncio.wait({self._tasks[0]})

    async def stop(self) -> None:
        """Stop serving (open websockets are closed), stop the pump and prices, close the exchange."""
        self._uvicorn.should_exit = True
        await self._pump.close()
        for task in self._tasks[2:]:
            task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._socket.close()
        self.exchange.close()
        for result in results:
            if isinstance(result, Exception):
                raise result

    async def __aenter__(self) -> PaperServer:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _price_feed(self) -> None:
        """A bar per symbol every ``bar_seconds``, closing on the grid, fed to the exchange and then
        published to market-data subscribers (so a client never sees a price the venue has not)."""
        bar_ns = round(self.config.marketdata.bar_seconds * 1_000_000_000)
        symbols = self.config.marketdata.symbols
        start = {s: p for s in symbols if (p := self.exchange.last_price(s)) is not None}
        walk = RandomWalk(symbols, seed=self.config.marketdata.seed, bar_ns=bar_ns, start=start)
        for symbol in symbols:
            self.exchange.set_price(symbol, walk.price(symbol))
        while True:
            now = self.clock.now_ns()
            close_ns = (now // bar_ns + 1) * bar_ns
            await asyncio.sleep((close_ns - now) / 1e9)
            bars = walk.next_bars(close_ns)
            for bar in bars:
                self.exchange.on_bar(bar)
            self.market.publish(bars)


async def serve(
    config: Config,
    host: str,
    port: int,
    *,
    keys: Secrets | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Run a paper server until SIGINT/SIGTERM (or cancellation); print the listening line first."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        async with PaperServer(config, keys or alpaca_secrets(), host=host, port=port) as server:
            print(f"{LISTENING} {server.url}", flush=True)
            if ready is not None:
                ready.set()
            stopped = asyncio.create_task(stop.wait())
            closed = asyncio.create_task(server.wait_closed())
            try:
                await asyncio.wait({stopped, closed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                closed.cancel()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None) -> int:
    """``autoquant paper-server [--host H] [--port N] [--config PATH]``; keys from APCA_API_* env."""
    parser = argparse.ArgumentParser(prog="autoquant paper-server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--config", default=None, help="TOML config (else $AUTOQUANT_CONFIG, else defaults)")
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
        keys = alpaca_secrets()
    except ConfigError as error:
        print(f"paper-server: {error}", file=sys.stderr)
        return 2
    asyncio.run(serve(config, args.host, args.port, keys=keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
