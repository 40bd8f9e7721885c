"""The paper exchange served as an Alpaca-compatible API on loopback (``autoquant paper-server``).

A ``PaperServer`` owns everything that runs: the exchange, its pump (``PaperBroker.run``: fills arrive
with the configured latency), a seeded price path feeding it (and the market-data subscribers) a bar
per symbol every ``marketdata.bar_seconds`` (and serving the same bars as history), and uvicorn
serving ``brokers.paper.server.create_app``. It starts and stops as one unit, so tests and the
daemon's end-to-end runs can hold one in-process;
``serve`` / ``main`` run it as a process that prints ``paper-server listening on http://HOST:PORT``
once it accepts connections (port 0 picks a free port).
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

from autoquant.brokers.paper.broker import PaperBroker
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.brokers.paper.market_stream import MarketDataHub
from autoquant.brokers.paper.prices import PricePath
from autoquant.brokers.paper.server import create_app
from autoquant.clocks import SystemClock
from autoquant.domain.clock import Clock
from autoquant.errors import AutoquantError, ConfigError
from autoquant.runtime.config import Config, Secrets, alpaca_secrets, load
from autoquant.runtime.lock import PaperStateLock
from autoquant.runtime.paper_options import add_arguments, exposure_warning, prepare_process

LISTENING = "paper-server listening on"
START_TIMEOUT_S = 10.0


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
        #: One exchange per state file: a daemon on the embedded exchange with the same file is refused.
        self._state_lock = PaperStateLock(config.paper.state_path)
        self._state_lock.acquire()
        try:
            self._build(config, keys, host, port, feed_prices=feed_prices, retry_after_s=retry_after_s)
        except BaseException:
            self._state_lock.release()
            raise
        self._tasks: list[asyncio.Task[Any]] = []

    def _build(
        self,
        config: Config,
        keys: Secrets,
        host: str,
        port: int,
        *,
        feed_prices: bool,
        retry_after_s: float | None,
    ) -> None:
        self.exchange = PaperExchange(config.paper, self.clock, config.marketdata.symbols)
        #: Market-data subscribers; the price feed publishes to it, tests may too.
        self.market = MarketDataHub(keys)
        #: The synthetic prices: the live feed's bars and the historical bars routes' are one path.
        self.prices = PricePath(config.marketdata.seed, round(config.marketdata.bar_seconds * 1_000_000_000))
        self.app = create_app(
            self.exchange,
            config.paper.faults,
            keys,
            seed=config.paper.seed,
            retry_after_s=retry_after_s,
            market=self.market,
            prices=self.prices,
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
        self._state_lock.release()
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
        published to market-data subscribers (so a client never sees a price the venue has not).
        The bars are the price path's, so ``GET /v2/stocks/bars`` serves the same ones afterwards."""
        bar_ns = self.prices.bar_ns
        symbols = self.config.marketdata.symbols
        now = self.clock.now_ns()
        for symbol in symbols:
            self.exchange.set_price(symbol, self.prices.price_at(symbol, now))
        while True:
            now = self.clock.now_ns()
            close_ns = (now // bar_ns + 1) * bar_ns
            await asyncio.sleep((close_ns - now) / 1e9)
            bars = self.prices.bars_closing_at(symbols, close_ns)
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
    parser = argparse.ArgumentParser(
        prog="autoquant paper-server",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_arguments(parser, default_port=0)
    parser.add_argument("--config", default=None, help="TOML config (else $AUTOQUANT_CONFIG, else defaults)")
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
        keys = alpaca_secrets()
    except ConfigError as error:
        print(f"paper-server: {error}", file=sys.stderr)
        return 2
    warning = exposure_warning(args.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    prepare_process()
    try:
        asyncio.run(serve(config, args.host, args.port, keys=keys))
    except AutoquantError as error:
        print(f"paper-server: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
