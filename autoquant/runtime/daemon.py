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
from pathlib import Path
from typing import TextIO

import structlog

from autoquant.clocks import SystemClock
from autoquant.domain.clock import Clock
from autoquant.domain.controls import ACCOUNT, Control, ControlKind, ControlState
from autoquant.domain.orders import OrderStatus
from autoquant.domain.values import iso_utc
from autoquant.errors import AutoquantError, BrokerError
from autoquant.ledger import Ledger
from autoquant.logs import LoggingHandle, configure_logging
from autoquant.marketdata.replay import CsvBars
from autoquant.runtime.config import Config
from autoquant.runtime.lock import LedgerLock
from autoquant.runtime.sdnotify import Notifier, WatchdogPinger
from autoquant.runtime.sources import build_source
from autoquant.runtime.supervisor import Supervisor, WorkerSpec
from autoquant.runtime.system import System, build_system, open_broker
from autoquant.strategies import build_strategies
from autoquant.workers.crashpoints import crashpoint
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.strategy import StrategyWorker

log = structlog.get_logger("autoquant.daemon")


def heartbeat_path(ledger_path: Path) -> Path:
    """Where a running daemon publishes its workers' heartbeats (next to the ledger)."""
    return ledger_path.with_name(ledger_path.name + ".status.json")


class Daemon:
    def __init__(
        self,
        config: Config,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        logging: LoggingHandle | None = None,
    ) -> None:
        self.config = config
        #: The log writer, whose dropped-record count `autoquant status` shows (None: not configured here).
        self.logging = logging
        self.clock: Clock = clock or SystemClock()
        self.notifier = notifier or Notifier.from_env()
        self.stop_requested = asyncio.Event()
        self.ready = asyncio.Event()
        self.strategies = build_strategies(config.strategies, config.source)
        #: Set when a worker failed fatally (wrong keys, a corrupt ledger): the daemon stops and says why.
        self.fatal: tuple[str, BaseException] | None = None

    def request_stop(self) -> None:
        self.stop_requested.set()

    async def run(self) -> int:
        config = self.config
        lock = LedgerLock(config.ledger.path)
        lock.acquire()
        try:
            source = build_source(config.marketdata, self.clock, sleep=self.clock.sleep)
            if isinstance(source, CsvBars):
                await source.load()  # a malformed row fails the start, before anything trades
            ledger = await Ledger.open(config.ledger.path)
            try:
                async with open_broker(config, self.clock) as handle:
                    system = build_system(
                        config,
                        self.clock,
                        ledger,
                        handle,
                        source=source,
                        strategies=self.strategies,
                        on_repeated_crash=self._halt_on_crash(ledger),
                        on_controls_change=self._announce,
                    )
                    system.supervisor.on_fatal = self._on_fatal
                    return await self._run(system)
            finally:
                await source.close()
                await ledger.close()
        finally:
            lock.release()

    def _on_fatal(self, worker: str, error: BaseException) -> None:
        self.fatal = (worker, error)
        self.request_stop()

    async def _run(self, system: System) -> int:
        config = self.config
        supervisor = system.supervisor
        specs = system.worker_specs()
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.request_stop)
                handled.append(sig)
        try:
            async with asyncio.TaskGroup() as group:
                supervisor.start(group, specs["updates"])
                supervisor.start(group, specs["marketdata"])
                self.notifier.extend_timeout(120)
                try:
                    outcome = await system.reconciler.run("startup")
                except BrokerError as error:
                    await supervisor.stop_all()
                    raise AutoquantError(
                        f"the broker cannot be reached at start ({error}): check [broker] url and the "
                        "APCA_API_* keys, or that paper-server is running"
                    ) from error
                log.info("startup_reconciliation", clean=outcome.clean, summary=outcome.summary)
                # Lookups only: an order the broker has is adopted now; one it does not have is sent by
                # the outbox once market data flows (and the pre-submit check finds its decision fresh).
                unresolved = await system.execution.resolve_pending(send_missing=False)
                if unresolved:
                    log.warning("orders_unresolved_at_start", count=len(unresolved))
                for name in ("execution", "reconciliation", "killswitch", "strategy"):
                    supervisor.start(group, specs[name])
                supervisor.start(
                    group,
                    WorkerSpec(
                        "watchdog", WatchdogPinger(self.notifier, supervisor.healthy, clock=self.clock).run
                    ),
                )
                supervisor.start(
                    group,
                    WorkerSpec("status", lambda: self._publish_status(system), restart_on_exit=True),
                )
                controls = await system.gate.refresh_controls()
                system.strategy_worker.enabled.set()
                self.ready.set()
                if self.fatal is None:  # a worker that failed fatally at start: never READY, just stop
                    self.notifier.ready(status=self._status_line(controls))
                log.info(
                    "daemon_ready",
                    broker=config.broker.kind,
                    strategies=[s.id for s in self.strategies],
                    trading_state=controls.trading_state.value,
                )
                await self.stop_requested.wait()
                await self._drain(supervisor, system.strategy_worker, system.execution)
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
        worker = system.strategy_worker
        log.info("daemon_stopped", decisions=worker.decisions, orders=worker.orders)
        if self.fatal is not None:
            name, cause = self.fatal
            raise AutoquantError(f"worker {name} failed and no restart can cure it: {cause}") from cause
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

    async def _publish_status(self, system: System) -> None:
        """Every second, the daemon's liveness for `autoquant status` (a side file: heartbeats are not
        ledger history)."""
        path = heartbeat_path(self.config.ledger.path)
        clock, supervisor = self.clock, system.supervisor
        started = clock.now_ns()
        while True:
            now_ns, now_mono = clock.now_ns(), clock.monotonic()
            workers = {
                name: {
                    "running": status.running,
                    "finished": status.finished,
                    "restarts": status.restarts,
                    "last_heartbeat": iso_utc(now_ns - int((now_mono - status.last_beat) * 1e9)),
                }
                for name, status in supervisor.status.items()
            }
            controls = await system.gate.refresh_controls()
            body = {
                "pid": os.getpid(),
                "started": iso_utc(started),
                "written": iso_utc(now_ns),
                "trading_state": controls.trading_state.value,
                "healthy": supervisor.healthy(),
                "log_records_dropped": None if self.logging is None else self.logging.dropped,
                "workers": workers,
            }
            temporary = path.with_name(path.name + ".tmp")
            temporary.write_text(json.dumps(body, indent=1))
            os.replace(temporary, path)
            await clock.sleep(1.0)  # a publishing period

    async def _announce(self, state: ControlState) -> None:
        self.notifier.status(self._status_line(state))

    @staticmethod
    def _status_line(state: ControlState) -> str:
        paused = ",".join(sorted(state.paused)) or "none"
        return f"trading {state.trading_state.value.upper()}; paused: {paused}"


#: How long a thread may hold the GIL while another waits for it (CPython's default is 5 ms). The
#: ledger's writer and reader threads and the log writer run Python beside the event loop; with the
#: default, a tick can wait up to 5 ms for the GIL behind them. Measured on the tick bench (5 pairs,
#: interleaved): tick_to_submit p50 2.6 vs 2.9 ms and p99 5.2 vs 6.1 ms, typically.
SWITCH_INTERVAL_S = 0.0005


def prefer_loop_latency() -> None:
    """Hand the GIL back to the event loop sooner (process-wide; the daemon and the bench call it)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def run_daemon(config: Config) -> int:
    prefer_loop_latency()
    handle = configure_logging(config.logging)
    try:
        return asyncio.run(Daemon(config, logging=handle).run())
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
                system = build_system(config, clock, ledger, handle)
                outcome = await system.reconciler.run("cli")
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
