"""The daemon: composes the workers, gates trading on the start-up reconciliation, drains on SIGTERM.

Start-up, in order: take the ledger lock (one daemon per ledger), open and migrate the ledger, build
the broker and the bar source (a malformed CSV fails here, before anything trades), subscribe to order
updates, run the start-up reconciliation (a broker that cannot be reached ends the start with one line
saying so), resolve every RESERVED and UNKNOWN order, then READY=1 and strategies on.

Shutdown (SIGTERM or SIGINT): strategies off (no new decisions), market data stopped, the execution
worker finishes what is in flight, every task is cancelled, the ledger is flushed and closed; exit 0
within ``[daemon] drain_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import structlog

from autoquant.brokers.paper import PaperBroker, PaperExchange
from autoquant.brokers.port import Broker
from autoquant.domain.clock import Clock, SystemClock
from autoquant.domain.controls import ACCOUNT, Control, ControlKind, ControlState
from autoquant.domain.orders import OrderStatus
from autoquant.domain.values import iso_utc
from autoquant.errors import AutoquantError, BrokerError
from autoquant.ledger import Ledger
from autoquant.logs import configure_logging
from autoquant.marketdata.reorder import DataGap, ReorderBuffer
from autoquant.marketdata.replay import CsvBars
from autoquant.runtime.config import Config, alpaca_secrets
from autoquant.runtime.lock import LedgerLock
from autoquant.runtime.sdnotify import Notifier, WatchdogPinger
from autoquant.runtime.sources import build_source
from autoquant.runtime.supervisor import Supervisor, WorkerSpec
from autoquant.strategies import build_strategy
from autoquant.workers.crashpoints import crashpoint
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.killswitch import KillSwitch
from autoquant.workers.market import BarSink, MarketDataWorker, MarketState
from autoquant.workers.reconciliation import Reconciler
from autoquant.workers.risk_gate import RiskGate
from autoquant.workers.strategy import StrategyWorker

log = structlog.get_logger("autoquant.daemon")


@dataclass
class BrokerHandle:
    broker: Broker
    #: The embedded paper exchange, when there is one (it takes the bars as prices).
    exchange: PaperExchange | None = None


@contextlib.asynccontextmanager
async def open_broker(config: Config, clock: Clock) -> AsyncIterator[BrokerHandle]:
    """The configured broker; for the embedded paper exchange its pump runs inside this context."""
    if config.broker.kind == "alpaca":
        from autoquant.brokers.alpaca import AlpacaBroker

        alpaca = AlpacaBroker(config.broker, alpaca_secrets(), clock=clock)
        try:
            yield BrokerHandle(alpaca)
        finally:
            await alpaca.close()
        return
    exchange = PaperExchange(config.paper, clock, config.marketdata.symbols)
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


def heartbeat_path(ledger_path: Path) -> Path:
    """Where a running daemon publishes its workers' heartbeats (next to the ledger)."""
    return ledger_path.with_name(ledger_path.name + ".status.json")


def strategies_by_symbol(config: Config) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for strategy in config.strategies:
        result.setdefault(strategy.symbol, set()).add(strategy.id)
    return result


class Daemon:
    def __init__(self, config: Config, clock: Clock | None = None, notifier: Notifier | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.notifier = notifier or Notifier.from_env()
        self.stop_requested = asyncio.Event()
        self.ready = asyncio.Event()
        self.strategies = [build_strategy(s) for s in config.strategies]

    def request_stop(self) -> None:
        self.stop_requested.set()

    async def run(self) -> int:
        config = self.config
        lock = LedgerLock(config.ledger.path)
        lock.acquire()
        try:
            source = build_source(config.marketdata, self.clock)
            if isinstance(source, CsvBars):
                await source.load()  # a malformed row fails the start, before anything trades
            ledger = await Ledger.open(config.ledger.path)
            try:
                async with open_broker(config, self.clock) as handle:
                    return await self._run(ledger, handle, source)
            finally:
                await source.close()
                await ledger.close()
        finally:
            lock.release()

    async def _run(self, ledger: Ledger, handle: BrokerHandle, source: object) -> int:
        config, clock = self.config, self.clock
        broker = handle.broker
        market = MarketState(clock, list(config.marketdata.symbols), config.risk.max_data_age_s)
        gate = RiskGate(ledger, market, clock, config.risk)
        gate.controls = await ledger.control_state()
        reconcile_wake = asyncio.Event()

        async def incident(kind: str, subject: str, message: str, details: dict[str, object]) -> None:
            incident_id, new = await ledger.open_incident(
                kind=kind,
                subject=subject,
                scope=ACCOUNT,
                message=message,
                action="run `autoquant reconcile`, then check `autoquant incidents`",
                details=details,
                local_ts_ns=clock.now_ns(),
            )
            if new:
                log.error("incident_opened", incident_id=incident_id, kind=kind, message=message)
                reconcile_wake.set()

        execution = ExecutionWorker(
            ledger,
            broker,
            clock,
            pre_submit=gate.check_order,
            incident=incident,
            resubmit_grace_s=config.reconcile.resubmit_grace_s,
            on_stream_restart=reconcile_wake.set,
            on_submit=gate.note_submit,
        )
        supervisor = Supervisor(self._halt_on_crash(ledger))
        execution.heartbeat = supervisor.heartbeat("execution")
        strategy_worker = StrategyWorker(
            ledger,
            self.strategies,
            market,
            gate,
            clock,
            submit=execution.submit_soon,
            max_data_age_s=config.risk.max_data_age_s,
            heartbeat=supervisor.heartbeat("strategy"),
        )
        sinks: list[BarSink] = [strategy_worker.on_bar]
        if handle.exchange is not None:
            sinks.insert(0, handle.exchange.on_bar)

        async def on_gap(gap: DataGap) -> None:
            for strategy_id in sorted(strategies_by_symbol(config).get(gap.symbol, ())):
                await ledger.open_incident(
                    kind="data_gap",
                    subject=f"{gap.symbol}:{gap.after_ns}",
                    scope=strategy_id,
                    message=gap.describe(),
                    action="check the market-data feed; the strategy holds while data is stale",
                    details=gap.model_dump(),
                    local_ts_ns=clock.now_ns(),
                )

        market_worker = MarketDataWorker(
            source,  # type: ignore[arg-type]
            market,
            clock,
            reorder=ReorderBuffer(
                window=config.marketdata.reorder_window, interval_s=config.marketdata.bar_seconds
            ),
            on_bar=sinks,
            on_gap=on_gap,
            heartbeat=supervisor.heartbeat("marketdata"),
        )
        reconciler = Reconciler(ledger, broker, clock, strategies_by_symbol(config))
        killswitch = KillSwitch(
            ledger,
            broker,
            clock,
            gate,
            execution,
            config.risk,
            on_change=self._announce,
            heartbeat=supervisor.heartbeat("killswitch"),
        )
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.request_stop)
                handled.append(sig)
        try:
            async with asyncio.TaskGroup() as group:
                supervisor.start(group, WorkerSpec("updates", execution.run_updates, restart_on_exit=True))
                supervisor.start(group, WorkerSpec("marketdata", market_worker.run))
                self.notifier.extend_timeout(120)
                try:
                    outcome = await reconciler.run("startup")
                except BrokerError as error:
                    await supervisor.stop_all()
                    raise AutoquantError(
                        f"the broker cannot be reached at start ({error}): check [broker] url and the "
                        "APCA_API_* keys, or that paper-server is running"
                    ) from error
                log.info("startup_reconciliation", clean=outcome.clean, summary=outcome.summary)
                # Lookups only: an order the broker has is adopted now; one it does not have is sent by
                # the outbox once market data flows (and the pre-submit check finds its decision fresh).
                unresolved = await execution.resolve_pending(send_missing=False)
                if unresolved:
                    log.warning("orders_unresolved_at_start", count=len(unresolved))
                # Tracked heartbeats are the loops that tick on their own (outbox sweep, kill-switch
                # poll); market data and strategies may rightly be quiet for hours (market closed).
                supervisor.start(
                    group,
                    WorkerSpec("execution", execution.run_outbox, heartbeat_s=60.0, restart_on_exit=True),
                )
                supervisor.start(
                    group,
                    WorkerSpec(
                        "reconciliation",
                        lambda: reconciler.run_forever(config.reconcile.interval_s, reconcile_wake),
                        restart_on_exit=True,
                    ),
                )
                supervisor.start(group, WorkerSpec("killswitch", killswitch.run, heartbeat_s=30.0))
                supervisor.start(group, WorkerSpec("strategy", strategy_worker.run, restart_on_exit=True))
                supervisor.start(
                    group, WorkerSpec("watchdog", WatchdogPinger(self.notifier, supervisor.healthy).run)
                )
                supervisor.start(
                    group,
                    WorkerSpec(
                        "status", lambda: self._publish_status(supervisor, gate), restart_on_exit=True
                    ),
                )
                strategy_worker.enabled.set()
                self.ready.set()
                self.notifier.ready(status=self._status_line(gate.controls))
                log.info(
                    "daemon_ready",
                    broker=config.broker.kind,
                    strategies=[s.id for s in self.strategies],
                    trading_state=gate.controls.trading_state.value,
                )
                await self.stop_requested.wait()
                await self._drain(supervisor, strategy_worker, execution)
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
        log.info("daemon_stopped", decisions=strategy_worker.decisions, orders=strategy_worker.orders)
        return 0

    async def _drain(
        self, supervisor: Supervisor, strategies: StrategyWorker, execution: ExecutionWorker
    ) -> None:
        log.info("daemon_draining", timeout_s=self.config.daemon.drain_timeout_s)
        self.notifier.stopping()
        strategies.enabled.clear()
        async with strategies.busy:  # the bar being decided finishes: no half-handed reservation
            await supervisor.stop("strategy")
        await supervisor.stop("marketdata")
        execution.drain()
        crashpoint("during_shutdown")
        budget = max(0.5, self.config.daemon.drain_timeout_s - 2.0)
        try:
            async with asyncio.timeout(budget):
                await execution.settle()
        except TimeoutError:
            log.warning("drain_timed_out", budget_s=budget)
        withdrawn = await execution.withdraw_unsent()
        if withdrawn:
            log.info("reservations_withdrawn", count=withdrawn)
        await supervisor.stop_all()

    def _halt_on_crash(self, ledger: Ledger):  # type: ignore[no-untyped-def]
        async def halt(name: str, error: BaseException) -> None:
            state = await ledger.control_state()
            if state.trading_state.value == "halted":
                return
            await ledger.append_control(
                Control(
                    kind=ControlKind.HALT,
                    scope=ACCOUNT,
                    reason=f"worker {name} keeps crashing ({error!r}); see the logs, then `autoquant resume`",
                    actor="supervisor",
                    local_ts_ns=self.clock.now_ns(),
                )
            )
            log.error("trading_halted_on_crashes", crashed_worker=name)

        return halt

    async def _publish_status(self, supervisor: Supervisor, gate: RiskGate) -> None:
        """Every second, the daemon's liveness for `autoquant status` (a side file: heartbeats are not
        ledger history)."""
        path = heartbeat_path(self.config.ledger.path)
        started = self.clock.now_ns()
        while True:
            now_wall = time.time()
            workers = {
                name: {
                    "running": status.running,
                    "finished": status.finished,
                    "restarts": status.restarts,
                    "last_heartbeat": iso_utc(int((now_wall - (time.monotonic() - status.last_beat)) * 1e9)),
                }
                for name, status in supervisor.status.items()
            }
            body = {
                "pid": os.getpid(),
                "started": iso_utc(started),
                "written": iso_utc(time.time_ns()),
                "trading_state": gate.controls.trading_state.value,
                "healthy": supervisor.healthy(),
                "workers": workers,
            }
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_text(json.dumps(body, indent=1))
            os.replace(temporary, path)
            await asyncio.sleep(1.0)  # a publishing period

    async def _announce(self, state: ControlState) -> None:
        self.notifier.status(self._status_line(state))

    @staticmethod
    def _status_line(state: ControlState) -> str:
        paused = ",".join(sorted(state.paused)) or "none"
        return f"trading {state.trading_state.value.upper()}; paused: {paused}"


def run_daemon(config: Config) -> int:
    handle = configure_logging(config.logging)
    try:
        return asyncio.run(Daemon(config).run())
    finally:
        handle.close()


async def _reconcile(config: Config, out: TextIO) -> int:
    clock = SystemClock()
    lock = LedgerLock(config.ledger.path)
    lock.acquire()
    try:
        ledger = await Ledger.open(config.ledger.path)
        try:
            async with open_broker(config, clock) as handle:
                reconciler = Reconciler(ledger, handle.broker, clock, strategies_by_symbol(config))
                outcome = await reconciler.run("cli")
            pending = [
                order.client_order_id
                for order in await ledger.open_orders()
                if order.status in (OrderStatus.RESERVED, OrderStatus.UNKNOWN)
            ]
        finally:
            await ledger.close()
    finally:
        lock.release()
    out.write(("clean" if outcome.clean else "mismatch") + f": {outcome.summary}\n")
    if pending:
        out.write(
            f"{len(pending)} order(s) RESERVED or UNKNOWN are not at the broker; the daemon resolves them "
            f"at its next start (lookup, then send under the same id): {', '.join(pending)}\n"
        )
    return 0 if outcome.clean else 1


def reconcile_once(config: Config, out: TextIO) -> int:
    """``autoquant reconcile``: exit 0 clean, 1 mismatch (incident recorded), 2 error."""
    try:
        return asyncio.run(_reconcile(config, out))
    except BrokerError as error:
        sys.stderr.write(f"autoquant: reconciliation failed: {error}\n")
        return 2
