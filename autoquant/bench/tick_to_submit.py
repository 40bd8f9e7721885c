"""Tick to submit: a bar in → the broker's submit call, through the daemon's real workers.

The system is built by the composition root (``build_system``), as the daemon builds it. Per tick
the bar is released the way the market-data worker releases one (market state, the paper venue's
price, the strategy worker's queue); the ``StrategyWorker`` assembles the state from the ledger,
decides (``SmaCross``), runs the ``RiskGate`` on the intent, records decision + risk event +
reservation in one durable transaction and hands the order to the ``ExecutionWorker``, which re-runs
the gate before submission and calls ``submit`` on the in-process paper broker. The clock stops when
``submit`` is entered. The bars zigzag so that every tick is a crossover (buy when flat, sell the
whole position when long), and each order's fill and acknowledgement are awaited before the next
bar, as bars are a second apart in the daemon.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from autoquant.bench.common import Sizes, daemon_logging, percentile, progress, scratch_dir
from autoquant.bench.pipeline import TimedPaperBroker, bench_exchange, running_system, wait_for
from autoquant.clocks import SystemClock
from autoquant.domain.bars import Bar
from autoquant.domain.orders import OrderStatus
from autoquant.domain.values import from_ns
from autoquant.ledger import Ledger
from autoquant.runtime.config import (
    Config,
    LedgerSettings,
    MarketDataSettings,
    RiskSettings,
    SmaCrossSettings,
)
from autoquant.workers.strategy import StrategyWorker

SYMBOL = "AAPL"
_HIGH, _LOW = Decimal("100.00"), Decimal("99.00")


def zigzag_bar(index: int, now_ns: int) -> Bar:
    """Closes alternate high/low: with fast=1, slow=2 every bar after the first two is a cross."""
    close = _HIGH if index % 2 == 0 else _LOW
    close_time = from_ns(now_ns // 1000 * 1000)
    return Bar(
        symbol=SYMBOL,
        open_time=close_time - timedelta(seconds=1),
        close_time=close_time,
        open=close,
        high=_HIGH,
        low=_LOW,
        close=close,
        volume=Decimal(1000),
        source="bench",
    )


def _not_ordered(worker: StrategyWorker) -> int:
    """Decisions that ended without an order: holds and denials."""
    return sum(worker.holds.values()) + worker.denied


def bench_config(directory: Path) -> Config:
    """One SMA strategy on one symbol; default limits except the order rate (bars come far faster
    than one a second here)."""
    return Config(
        ledger=LedgerSettings(path=directory / "ledger.db"),
        marketdata=MarketDataSettings(symbols=[SYMBOL]),
        strategies=[
            SmaCrossSettings(
                id="bench-sma",
                kind="sma_cross",
                symbol=SYMBOL,
                params={"fast": 1, "slow": 2, "qty": Decimal(10)},
            )
        ],
        risk=RiskSettings(max_orders_per_minute=1_000_000_000),
    )


async def run(
    sizes: Sizes,
    beside: Callable[[Path], AbstractAsyncContextManager[object]] | None = None,
    tag: Callable[[], str | None] | None = None,
) -> dict[str, object]:
    """``beside``, given the ledger's path, runs something around the ticks (the API-load group's clients);
    ``tag``, read as each tick starts, files its latency under that name in ``tick_latencies_ns_by_tag``
    (None: not kept there), for a caller that alternates conditions within the run."""
    with scratch_dir("tick") as directory, daemon_logging(directory):
        clock = SystemClock()
        config = bench_config(directory)
        ledger = await Ledger.open(config.ledger.path)
        exchange = bench_exchange(directory, clock, [SYMBOL])
        broker = TimedPaperBroker(exchange)
        latencies: list[int] = []
        by_tag: dict[str, list[int]] = {}
        no_order = 0
        try:
            around = beside(config.ledger.path) if beside is not None else contextlib.nullcontext()
            async with running_system(config, ledger, broker, exchange, clock) as (system, running), around:
                worker, market = system.strategy_worker, system.market
                worker.enabled.set()
                running.start(worker.run(), "strategy")
                warmup = worker.strategies[0].warmup
                for index in range(warmup + sizes.ticks):
                    submitted, skipped = len(broker.submitted_ns), _not_ordered(worker)
                    bar = zigzag_bar(index, clock.now_ns())
                    label = tag() if tag is not None else None
                    broker.entered.clear()
                    start = time.perf_counter_ns()
                    market.observe(bar)
                    exchange.on_bar(bar)
                    worker.on_bar(bar)

                    async def acted(submitted: int = submitted, skipped: int = skipped) -> bool:
                        return len(broker.submitted_ns) > submitted or _not_ordered(worker) > skipped

                    # Woken by the submit itself; a tick that ends without an order is seen within 50 ms.
                    await wait_for(acted, running, "the tick's decision to act", 10, wake=broker.entered)
                    if len(broker.submitted_ns) == submitted:
                        no_order += index >= warmup
                        continue
                    coid = next(reversed(broker.submitted_ns))

                    async def filled(coid: str = coid) -> bool:
                        order = await ledger.get_order(coid)
                        return order is not None and order.status is OrderStatus.FILLED

                    await wait_for(filled, running, f"order {coid} filled", 10)
                    # The fill can be recorded (from the update stream) before the execution worker has
                    # committed the submit's acknowledgement; bars a second apart find it done.
                    await system.execution.idle()
                    if index >= warmup:
                        latencies.append(broker.submitted_ns[coid] - start)
                        if label is not None:
                            by_tag.setdefault(label, []).append(latencies[-1])
        finally:
            exchange.close()
            await ledger.close()
    if not latencies:
        raise RuntimeError(f"no tick led to an order ({no_order} ticks without one)")
    p50, p99 = percentile(latencies, 0.50) / 1e6, percentile(latencies, 0.99) / 1e6
    progress(f"tick to submit: p50 {p50:.2f} ms, p99 {p99:.2f} ms over {len(latencies)} orders")
    result: dict[str, object] = {
        "tick_to_submit_p50_ms": round(p50, 3),
        "tick_to_submit_p99_ms": round(p99, 3),
        "tick_to_submit_orders": len(latencies),
        "tick_to_submit_ticks_without_order": no_order,
    }
    if tag is not None:
        result["tick_latencies_ns_by_tag"] = by_tag
    return result
