"""Orders per second through reserve → submit → ack → fill, in-process and over loopback.

Sixteen producers (think strategies) each reserve orders durably and hand them to the execution
worker (``submit_soon``), as the strategy worker does; the worker submits each, the venue acks and
fills it (no latency, no partial fills), and the worker appends the fill and the FILLED event from
the update stream. An order counts when the ledger shows it FILLED; the rate is orders over the time
from the first reservation to the last FILLED.

In-process: ``PaperBroker`` over ``PaperExchange`` with its pump. Over loopback: the Alpaca adapter
(``AlpacaBroker``, alpaca-py) against the paper server run as its own process
(``python -m autoquant.runtime.paper_server``), REST for submits and the ``trade_updates`` websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from autoquant.bench.common import Sizes, daemon_logging, progress, scratch_dir
from autoquant.bench.pipeline import BENCH_CASH, Running, bench_exchange, running_execution, wait_for
from autoquant.brokers.paper import PaperBroker
from autoquant.brokers.port import Broker
from autoquant.clocks import SystemClock
from autoquant.domain.clock import Clock
from autoquant.domain.orders import Order
from autoquant.domain.values import Side
from autoquant.ledger import Ledger
from autoquant.runtime.config import AlpacaBrokerSettings, Secrets

PRODUCERS = 16
SYMBOLS = ["AAPL", "MSFT"]
_KEYS = Secrets(key_id="bench-key", secret_key="bench-secret")
_LISTENING = "paper-server listening on"


async def _filled_count(ledger: Ledger) -> int:
    return await ledger.filled_order_count()


async def push_orders(ledger: Ledger, running: Running, clock: Clock, count: int, timeout_s: float) -> float:
    """Reserve ``count`` buys from ``PRODUCERS`` tasks; return orders/s until all are FILLED."""

    async def producer(p: int) -> None:
        for i in range(p, count, PRODUCERS):
            order = Order(
                client_order_id=f"aq-bench-{i:07d}",
                strategy_id=f"bench-{p}",
                symbol=SYMBOLS[i % len(SYMBOLS)],
                side=Side.BUY,
                qty=Decimal(1),
                created_ns=clock.now_ns(),
            )
            if not await ledger.reserve(order):
                raise RuntimeError(f"{order.client_order_id} was already reserved")
            running.worker.submit_soon(order.client_order_id)

    start = time.perf_counter()
    await asyncio.gather(*(producer(p) for p in range(PRODUCERS)))

    async def all_filled() -> bool:
        await asyncio.sleep(0.01)  # a count every 10 ms is plenty, and keeps the reads off the hot path
        return await _filled_count(ledger) >= count

    await wait_for(all_filled, running, f"{count} orders FILLED", timeout_s)
    return count / (time.perf_counter() - start)


async def inprocess(directory: Path, orders: int) -> float:
    clock = SystemClock()
    ledger = await Ledger.open(directory / "ledger.db")
    exchange = bench_exchange(directory, clock, SYMBOLS)
    try:
        for symbol in SYMBOLS:
            exchange.set_price(symbol, Decimal("100"))
        broker = PaperBroker(exchange)
        async with running_execution(ledger, broker, clock, pump=broker) as running:
            return await push_orders(ledger, running, clock, orders, timeout_s=120)
    finally:
        exchange.close()
        await ledger.close()


@contextlib.contextmanager
def paper_server_process(directory: Path) -> Iterator[str]:
    """The paper server as its own process on a free loopback port; yields its URL."""
    config = directory / "paper-server.toml"
    config.write_text(
        f'[paper]\nstate_path = "{directory / "server-paper.db"}"\nlatency_s = 0.0\n'
        f"partial_fill_probability = 0.0\nstarting_cash = {BENCH_CASH}\n"
        f"[marketdata]\nsymbols = {SYMBOLS!r}\nbar_seconds = 1.0\n".replace("'", '"'),
        encoding="utf-8",
    )
    env = {**os.environ, "APCA_API_KEY_ID": _KEYS.key_id, "APCA_API_SECRET_KEY": _KEYS.secret_key}
    with (directory / "paper-server.err").open("w", encoding="utf-8") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "autoquant.runtime.paper_server", "--port", "0", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=env,
        )
        try:
            assert process.stdout is not None
            url = None
            for line in process.stdout:  # the server prints its URL once it accepts connections
                if line.startswith(_LISTENING):
                    url = line.split()[-1]
                    break
            if url is None:
                process.wait(timeout=10)
                raise RuntimeError(
                    "paper server did not start: " + (directory / "paper-server.err").read_text()[-1000:]
                )
            yield url
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()


async def over_loopback(directory: Path, orders: int) -> float:
    from autoquant.brokers.alpaca import AlpacaBroker

    clock = SystemClock()
    with paper_server_process(directory) as url:
        ledger = await Ledger.open(directory / "ledger-server.db")
        broker: Broker = AlpacaBroker(AlpacaBrokerSettings(url=url, timeout_s=10.0), _KEYS, clock=clock)
        try:
            # The server's price feed sets a price per symbol as it starts; wait for both.
            async def priced() -> bool:
                positions_ready = await broker.account()
                return positions_ready is not None

            async with running_execution(ledger, broker, clock) as running:
                await wait_for(priced, running, "the paper server to answer", 10)
                return await push_orders(ledger, running, clock, orders, timeout_s=300)
        finally:
            await broker.close()
            await ledger.close()


async def run(sizes: Sizes) -> dict[str, object]:
    notes: list[str] = []
    with scratch_dir("throughput") as directory, daemon_logging(directory):
        rate = await inprocess(directory, sizes.inprocess_orders)
        progress(f"orders through the in-process paper exchange: {rate:.0f}/s")
        server_rate: float | None
        try:
            server_rate = await over_loopback(directory, sizes.server_orders)
            progress(f"orders through AlpacaBroker and the paper server: {server_rate:.0f}/s")
        except Exception as error:  # the number is optional; the reason goes in the notes
            server_rate = None
            notes.append(f"orders_per_s_paper_server not measured: {error!r}")
            progress(f"paper server path failed: {error!r}")
    return {
        "orders_per_s_paper_inprocess": round(rate, 1),
        "orders_per_s_paper_server": None if server_rate is None else round(server_rate, 1),
        "notes": notes,
    }
