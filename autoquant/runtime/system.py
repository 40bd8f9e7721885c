"""The composition root: the one place that builds the trading system from config, clock and broker.

``build_system`` wires every worker (strategy, execution, order updates, reconciliation, kill switch,
market data) over one ledger and one broker, and returns them unstarted; the daemon, ``autoquant
reconcile``, the benchmarks and the test rigs all build through it, so the wiring is written once.
Workers share only the ledger and wake-ups: the strategy worker hands fresh reservations to the
execution worker's queue, and a new incident or a reconnected update stream wakes the reconciler
through the ``IncidentReporter``'s event. Nothing here starts a task; ``System.worker_specs`` says how
the supervisor runs each worker.

``open_broker`` is the other half: the configured broker (the embedded paper exchange with its pump
running, or the Alpaca adapter), opened and closed as one context.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass

from autoquant.brokers.paper import PaperBroker, PaperExchange
from autoquant.brokers.port import Broker
from autoquant.brokers.settings import AlpacaBrokerSettings
from autoquant.domain.clock import Clock
from autoquant.domain.controls import ControlState
from autoquant.domain.strategy import Strategy
from autoquant.ledger import Ledger
from autoquant.marketdata.reorder import DataGap, ReorderBuffer
from autoquant.marketdata.source import BarSource
from autoquant.runtime.config import Config, alpaca_secrets
from autoquant.runtime.lock import PaperStateLock
from autoquant.runtime.supervisor import Supervisor, WorkerSpec
from autoquant.strategies import build_strategies
from autoquant.workers.backups import BackupWorker
from autoquant.workers.broker_requests import BrokerRequests
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.incidents import IncidentReporter
from autoquant.workers.killswitch import KillSwitch
from autoquant.workers.market import BarSink, MarketDataWorker, MarketState
from autoquant.workers.order_stream import OrderStream
from autoquant.workers.reachability import BrokerReachability
from autoquant.workers.reconciliation import Reconciler
from autoquant.workers.risk_gate import RiskGate
from autoquant.workers.strategy import StrategyWorker

#: The execution outbox and the kill switch tick on their own; past these bounds without a heartbeat a
#: worker counts as stuck (the watchdog stops pinging). Market data and strategies may rightly be quiet
#: for hours (a closed market), so they are not tracked.
EXECUTION_HEARTBEAT_S = 60.0
KILLSWITCH_HEARTBEAT_S = 30.0


@dataclass
class BrokerHandle:
    broker: Broker
    #: The embedded paper exchange, when there is one (it takes the bars as prices).
    exchange: PaperExchange | None = None


@contextlib.asynccontextmanager
async def _open_alpaca(config: Config, clock: Clock) -> AsyncIterator[BrokerHandle]:
    from autoquant.brokers.alpaca import AlpacaBroker

    settings = config.broker
    assert isinstance(settings, AlpacaBrokerSettings)  # BROKERS is keyed by the settings' own kind
    alpaca = AlpacaBroker(settings, alpaca_secrets(), clock=clock)
    try:
        yield BrokerHandle(alpaca)
    finally:
        await alpaca.close()


@contextlib.asynccontextmanager
async def open_paper(config: Config, clock: Clock, *, durable: bool = True) -> AsyncIterator[BrokerHandle]:
    """The embedded paper exchange on ``[paper] state_path``, its pump running inside this context;
    ``durable=False`` only for a backtest's venue, a scratch file like its ledger (see ``PaperStore``)."""
    with PaperStateLock(config.paper.state_path):  # a paper-server on the same file is refused
        async with _run_paper(config, clock, durable) as handle:
            yield handle


@contextlib.asynccontextmanager
async def _run_paper(config: Config, clock: Clock, durable: bool) -> AsyncIterator[BrokerHandle]:
    exchange = PaperExchange(config.paper, clock, config.marketdata.symbols, durable=durable)
    paper = PaperBroker(exchange)
    try:
        async with asyncio.TaskGroup() as group:
            pump = group.create_task(paper.run(), name="paper-pump")
            try:
                yield BrokerHandle(paper, exchange)
            finally:
                await paper.close()
                await asyncio.wait({pump}, timeout=2)
                pump.cancel()
    finally:
        exchange.close()


BrokerOpener = Callable[[Config, Clock], contextlib.AbstractAsyncContextManager[BrokerHandle]]

#: ``[broker] kind`` → how to open that broker. A new adapter registers here and adds its settings model
#: to the ``BrokerSettings`` union (brokers/settings.py).
BROKERS: dict[str, BrokerOpener] = {"paper": open_paper, "alpaca": _open_alpaca}


def open_broker(config: Config, clock: Clock) -> contextlib.AbstractAsyncContextManager[BrokerHandle]:
    """The configured broker; for the embedded paper exchange its pump runs inside this context."""
    return BROKERS[config.broker.kind](config, clock)


def strategies_by_symbol(config: Config) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for strategy in config.strategies:
        for symbol in strategy.traded:
            result.setdefault(symbol, set()).add(strategy.id)
    return result


@dataclass
class System:
    """Every worker of one account's daemon, built and wired, not yet running."""

    config: Config
    clock: Clock
    ledger: Ledger
    broker: Broker
    exchange: PaperExchange | None
    strategies: list[Strategy]
    market: MarketState
    gate: RiskGate
    incidents: IncidentReporter
    supervisor: Supervisor
    execution: ExecutionWorker
    order_stream: OrderStream
    strategy_worker: StrategyWorker
    market_data: MarketDataWorker | None
    reconciler: Reconciler
    killswitch: KillSwitch
    reachability: BrokerReachability
    #: Scheduled backups, when ``[backup] dir`` is set.
    backups: BackupWorker | None = None

    def worker_specs(self) -> dict[str, WorkerSpec]:
        """How the supervisor runs each worker, by name (market data only when there is a source)."""
        interval_s = self.config.reconcile.interval_s
        wake = self.incidents.reconcile_wake
        specs = [
            WorkerSpec(
                "updates",
                self.order_stream.run,
                restart_on_exit=True,
                alive=lambda: self.order_stream.listening,
            ),
            WorkerSpec(
                "execution",
                self.execution.run_outbox,
                heartbeat_s=EXECUTION_HEARTBEAT_S,
                restart_on_exit=True,
            ),
            WorkerSpec(
                "reconciliation",
                lambda: self.reconciler.run_forever(interval_s, wake),
                restart_on_exit=True,
            ),
            WorkerSpec("killswitch", self.killswitch.run, heartbeat_s=KILLSWITCH_HEARTBEAT_S),
            WorkerSpec("strategy", self.strategy_worker.run, restart_on_exit=True),
        ]
        if self.market_data is not None:
            specs.append(WorkerSpec("marketdata", self.market_data.run))
        if self.backups is not None:
            specs.append(WorkerSpec("backup", self.backups.run, restart_on_exit=True))
        return {spec.name: spec for spec in specs}


def build_system(
    config: Config,
    clock: Clock,
    ledger: Ledger,
    broker: BrokerHandle,
    *,
    source: BarSource | None = None,
    strategies: Sequence[Strategy] | None = None,
    on_repeated_crash: Callable[[str, BaseException], Awaitable[None]] | None = None,
    on_controls_change: Callable[[ControlState], Awaitable[None]] | None = None,
) -> System:
    """Build one account's system. ``strategies`` defaults to the config's; without a ``source`` no
    market-data worker is built (the caller feeds bars to ``System.strategy_worker``/``market``)."""
    built = list(strategies) if strategies is not None else build_strategies(config.strategies, config.source)
    by_symbol: Mapping[str, Set[str]] = strategies_by_symbol(config)
    supervisor = Supervisor(on_repeated_crash or _no_halt, clock=clock)
    market = MarketState(clock, list(config.marketdata.symbols), config.risk.max_data_age_s)
    gate = RiskGate(ledger, market, clock, config.risk)
    incidents = IncidentReporter(ledger, clock)
    reachability = BrokerReachability(clock, on_back=incidents.reconcile_wake.set)
    execution = ExecutionWorker(
        ledger,
        broker.broker,
        clock,
        pre_submit=gate.check_order,
        incidents=incidents,
        resubmit_grace_s=config.reconcile.resubmit_grace_s,
        heartbeat=supervisor.heartbeat("execution"),
    )
    execution.also_on_sweep(BrokerRequests(ledger, broker.broker, clock, execution, incidents).carry_out)
    order_stream = OrderStream(
        ledger,
        broker.broker,
        clock,
        incidents,
        heartbeat=supervisor.heartbeat("updates"),
        reachability=reachability,
    )
    strategy_worker = StrategyWorker(
        ledger,
        built,
        market,
        gate,
        clock,
        submit=execution.submit_soon,
        max_data_age_s=config.risk.max_data_age_s,
        heartbeat=supervisor.heartbeat("strategy"),
    )
    market_data = None
    if source is not None:
        sinks: list[BarSink] = [strategy_worker.on_bar]
        if broker.exchange is not None:
            sinks.insert(0, broker.exchange.on_bar)

        async def on_gap(gap: DataGap) -> None:
            for strategy_id in sorted(by_symbol.get(gap.symbol, ())):
                await incidents.report(
                    "data_gap",
                    f"{gap.symbol}:{gap.after_ns}",
                    gap.describe(),
                    gap.model_dump(),
                    scope=strategy_id,
                    action="check the market-data feed; the strategy holds while data is stale",
                    reconcile=False,
                )

        market_data = MarketDataWorker(
            source,
            market,
            clock,
            reorder=ReorderBuffer(
                window=config.marketdata.reorder_window, interval_s=config.marketdata.bar_seconds
            ),
            on_bar=sinks,
            on_gap=on_gap,
            heartbeat=supervisor.heartbeat("marketdata"),
        )
    reconciler = Reconciler(
        ledger,
        broker.broker,
        clock,
        by_symbol,
        incidents=incidents,
        reachability=reachability,
        heartbeat=supervisor.heartbeat("reconciliation"),
    )
    killswitch = KillSwitch(
        ledger,
        broker.broker,
        clock,
        config.risk,
        on_change=on_controls_change,
        heartbeat=supervisor.heartbeat("killswitch"),
        reachability=reachability,
    )
    return System(
        config=config,
        clock=clock,
        ledger=ledger,
        broker=broker.broker,
        exchange=broker.exchange,
        strategies=built,
        market=market,
        gate=gate,
        incidents=incidents,
        supervisor=supervisor,
        execution=execution,
        order_stream=order_stream,
        strategy_worker=strategy_worker,
        market_data=market_data,
        reconciler=reconciler,
        killswitch=killswitch,
        reachability=reachability,
        backups=None if config.backup.dir is None else BackupWorker(ledger, clock, config.backup, incidents),
    )


async def _no_halt(name: str, error: BaseException) -> None:
    """Without a daemon there is nobody to halt for: the crash is logged by the supervisor."""
