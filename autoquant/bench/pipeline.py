"""The order path the daemon runs, assembled for measuring: ledger, execution worker, broker, pump.

``running_system`` builds the daemon's system through the composition root (``build_system``) and runs
its order path — the paper pump, the order-update worker and the execution outbox — as tasks;
``running_execution`` runs the same order path without a risk gate (the throughput bench sends orders
with no market data, which the gate would rightly refuse). Both wait for the outbox to be started and
stop every task on exit.
``TimedPaperBroker`` is the in-process paper broker that notes when each submit call was entered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from autoquant.brokers.paper import PaperBroker, PaperExchange
from autoquant.brokers.port import Broker
from autoquant.domain.broker import BrokerOrderState, OrderRequest
from autoquant.domain.clock import Clock
from autoquant.domain.orders import Order
from autoquant.ledger import Ledger
from autoquant.ledger.records import RiskEvent
from autoquant.runtime.config import Config, PaperSettings
from autoquant.runtime.system import BrokerHandle, System, build_system
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.incidents import IncidentReporter
from autoquant.workers.order_stream import OrderStream

#: Enough cash that the venue never refuses a bench order for buying power.
BENCH_CASH = Decimal(10) ** 12


def bench_exchange(directory: Path, clock: Clock, symbols: list[str]) -> PaperExchange:
    """The in-process venue with no latency and no partial fills: what is measured is our code."""
    settings = PaperSettings(
        state_path=directory / "paper.db",
        latency_s=0.0,
        partial_fill_probability=0.0,
        starting_cash=BENCH_CASH,
    )
    return PaperExchange(settings, clock, symbols)


class TimedPaperBroker(PaperBroker):
    """The in-process paper broker, noting ``perf_counter_ns`` as each submit call is entered."""

    def __init__(self, exchange: PaperExchange) -> None:
        super().__init__(exchange)
        self.submitted_ns: dict[str, int] = {}
        #: Set as each submit call is entered: a waiting bench wakes then, without polling meanwhile.
        self.entered = asyncio.Event()

    async def submit(self, request: OrderRequest) -> BrokerOrderState:
        self.submitted_ns[request.client_order_id] = time.perf_counter_ns()
        self.entered.set()
        return await super().submit(request)


@dataclass
class Running:
    """The execution worker and the tasks that drive it."""

    worker: ExecutionWorker
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        self.tasks.append(asyncio.create_task(coroutine, name=name))

    def check(self) -> None:
        """Raise what stopped a task that should still be running (so a wait does not hang)."""
        for task in self.tasks:
            if task.done():
                error = None if task.cancelled() else task.exception()
                raise RuntimeError(f"bench task {task.get_name()} stopped: {error!r}")


@contextlib.asynccontextmanager
async def running_system(
    config: Config, ledger: Ledger, broker: PaperBroker, exchange: PaperExchange, clock: Clock
) -> AsyncIterator[tuple[System, Running]]:
    """The system ``config`` describes over ``ledger`` and the in-process ``broker``, its order path
    running; the caller feeds bars to ``system.market`` / ``system.strategy_worker`` itself."""
    system = build_system(config, clock, ledger, BrokerHandle(broker, exchange))
    running = Running(system.execution)
    running.start(broker.run(), "paper-pump")
    running.start(system.order_stream.run(), "order-updates")
    running.start(system.execution.run_outbox(), "execution-outbox")
    try:
        async with asyncio.timeout(30):
            await system.execution.started.wait()
        yield system, running
    finally:
        for task in running.tasks:
            task.cancel()
        await asyncio.gather(*running.tasks, return_exceptions=True)
        await broker.close()


@contextlib.asynccontextmanager
async def running_execution(
    ledger: Ledger,
    broker: Broker,
    clock: Clock,
    *,
    pump: PaperBroker | None = None,
    pre_submit: Callable[[Order], Awaitable[RiskEvent]] | None = None,
) -> AsyncIterator[Running]:
    worker = ExecutionWorker(ledger, broker, clock, pre_submit=pre_submit)
    running = Running(worker)
    if pump is not None:
        running.start(pump.run(), "paper-pump")
    stream = OrderStream(ledger, broker, clock, IncidentReporter(ledger, clock))
    running.start(stream.run(), "order-updates")
    running.start(worker.run_outbox(), "execution-outbox")
    try:
        async with asyncio.timeout(30):
            await worker.started.wait()
        yield running
    finally:
        for task in running.tasks:
            task.cancel()
        await asyncio.gather(*running.tasks, return_exceptions=True)
        if pump is not None:
            await pump.close()


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    running: Running,
    what: str,
    timeout_s: float,
    wake: asyncio.Event | None = None,
) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout_s`` or if a task died.

    With ``wake``, the condition is looked at again as soon as ``wake`` is set (the caller clears it
    first), and otherwise every 50 ms: a bench waiting on the path it measures does not wake the loop
    every half millisecond meanwhile.
    """
    deadline = time.monotonic() + timeout_s
    while not await condition():
        running.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench timed out after {timeout_s}s waiting for {what}")
        if wake is None:
            await asyncio.sleep(0.0005)
            continue
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.05):
                await wake.wait()
