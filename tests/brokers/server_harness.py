"""Running paper servers for tests: in-process (an asyncio context manager) or as a subprocess.

In-process::

    async with paper_server(tmp_path) as server:          # 127.0.0.1, a free port
        broker = alpaca_broker_for(server)                 # AlpacaBroker over loopback
        server.exchange.set_price("AAPL", Decimal(100))    # drive the venue directly
        ...
        await broker.close()

As a process (for crash tests: kill the daemon, the exchange lives on)::

    with paper_server_process(tmp_path) as (process, url):
        ...
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from autoquant.brokers.alpaca import AlpacaBroker
from autoquant.brokers.alpaca_http import RetryPolicy
from autoquant.brokers.paper import PaperBroker, PaperExchange
from autoquant.brokers.port import Broker
from autoquant.domain.clock import Clock
from autoquant.runtime.config import (
    AlpacaBrokerSettings,
    Config,
    FaultSettings,
    MarketDataSettings,
    PaperSettings,
    Secrets,
)
from autoquant.runtime.paper_server import LISTENING, PaperServer

TEST_KEYS = Secrets(key_id="test-key", secret_key="test-secret")
#: Quick retries, so fault tests finish fast and still exercise the backoff path.
FAST_RETRY = RetryPolicy(attempts=8, initial_s=0.01, max_s=0.05, max_retry_after_s=0.2)


def paper_config(tmp_path: Path, *, faults: FaultSettings | None = None, **paper: Any) -> Config:
    """A config whose paper state lives in ``tmp_path``; ``paper`` overrides PaperSettings fields."""
    settings: dict[str, Any] = {
        "state_path": tmp_path / "paper.db",
        "latency_s": 0.02,
        "partial_fill_probability": 0.0,
        "faults": faults or FaultSettings(),
        **paper,
    }
    return Config(
        paper=PaperSettings(**settings),
        marketdata=MarketDataSettings(symbols=["AAPL", "MSFT"], bar_seconds=0.2),
    )


@asynccontextmanager
async def paper_server(
    tmp_path: Path,
    *,
    faults: FaultSettings | None = None,
    feed_prices: bool = False,
    retry_after_s: float | None = None,
    keys: Secrets = TEST_KEYS,
    clock: Clock | None = None,
    **paper: Any,
) -> AsyncIterator[PaperServer]:
    """A paper server on 127.0.0.1 (free port) in this event loop; stopped cleanly on exit."""
    config = paper_config(tmp_path, faults=faults, **paper)
    async with PaperServer(
        config, keys, clock=clock, feed_prices=feed_prices, retry_after_s=retry_after_s
    ) as server:
        yield server


@asynccontextmanager
async def venue(
    kind: str, tmp_path: Path, clock: Clock, **paper: Any
) -> AsyncIterator[tuple[Broker, PaperExchange]]:
    """The broker under test and the exchange behind it, on ``clock``, trading AAPL: the Alpaca adapter
    over loopback to paper-server (``kind="alpaca"``), or the in-process paper broker with its pump
    running (``"paper"``). ``paper`` overrides PaperSettings fields."""
    if kind == "alpaca":
        async with paper_server(tmp_path, clock=clock, **paper) as server:
            alpaca = alpaca_broker_for(server)
            try:
                yield alpaca, server.exchange
            finally:
                await alpaca.close()
        return
    exchange = PaperExchange(PaperSettings(state_path=tmp_path / "paper.db", **paper), clock, ["AAPL"])
    broker = PaperBroker(exchange)
    pump = asyncio.create_task(broker.run())
    try:
        yield broker, exchange
    finally:
        await broker.close()
        await pump
        exchange.close()


def alpaca_broker_for(
    server: PaperServer, *, timeout_s: float = 5.0, retry: RetryPolicy = FAST_RETRY, keys: Secrets = TEST_KEYS
) -> AlpacaBroker:
    """The Alpaca adapter pointed at ``server`` (REST and trade_updates) over loopback."""
    return AlpacaBroker(AlpacaBrokerSettings(url=server.url, timeout_s=timeout_s), keys, retry=retry)


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 10.0) -> None:
    """Poll ``check`` until true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.01)


@contextmanager
def paper_server_process(
    tmp_path: Path, *, config_text: str | None = None, keys: Secrets = TEST_KEYS, timeout_s: float = 20.0
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``python -m autoquant.runtime.paper_server --port 0`` with a config in ``tmp_path``; yields
    the process and its URL (read from the listening line); terminated and reaped on exit."""
    config_path = tmp_path / "paper-server.toml"
    config_path.write_text(
        config_text
        if config_text is not None
        else f'[paper]\nstate_path = "{tmp_path / "paper.db"}"\nlatency_s = 0.02\n'
        '[marketdata]\nsymbols = ["AAPL", "MSFT"]\nbar_seconds = 0.2\n'
    )
    env = {**os.environ, "APCA_API_KEY_ID": keys.key_id, "APCA_API_SECRET_KEY": keys.secret_key}
    process = subprocess.Popen(
        [sys.executable, "-m", "autoquant.runtime.paper_server", "--port", "0", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout_s
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()  # the server prints the line once it is listening
            if not line:
                break
            if line.startswith(LISTENING):
                url = line.split()[-1]
        if url is None:
            process.kill()
            _, err = process.communicate(timeout=timeout_s)
            raise AssertionError(f"paper-server did not start: {err}")
        yield process, url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


__all__ = [
    "FAST_RETRY",
    "TEST_KEYS",
    "alpaca_broker_for",
    "paper_config",
    "paper_server",
    "paper_server_process",
    "wait_until",
]
