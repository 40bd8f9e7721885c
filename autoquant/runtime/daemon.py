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
import gc
import json
import os
import signal
import sys
from typing import Any, TextIO

import structlog

from autoquant.clocks import SystemClock
from autoquant.domain.clock import Clock
from autoquant.domain.controls import ACCOUNT, Control, ControlKind, ControlState
from autoquant.domain.orders import OrderStatus
from autoquant.domain.values import iso_utc
from autoquant.errors import AutoquantError, BrokerError, LedgerError, LedgerFull
from autoquant.ledger import Ledger
from autoquant.ledger.integrity import refuse_unsafe
from autoquant.logs import LoggingHandle, configure_logging
from autoquant.marketdata.replay import CsvBars
from autoquant.marketdata.source import BarSource
from autoquant.runtime.alerting import alert_spec, alert_worker, alerting_enabled, heartbeat_spec
from autoquant.runtime.api_process import ApiChild, check_api_settings
from autoquant.runtime.config import Config
from autoquant.runtime.health import last_bar_time, market_data_ended, unhealthy_reasons
from autoquant.runtime.lock import LedgerLock, PaperStateLock
from autoquant.runtime.probes import LoopLag, status_metrics
from autoquant.runtime.sdnotify import Notifier, WatchdogPinger
from autoquant.runtime.sources import build_source, check_csv_symbols
from autoquant.runtime.status_file import StatusFile, status_path
from autoquant.runtime.supervisor import Supervisor, WorkerSpec
from autoquant.runtime.system import System, build_system, open_broker
from autoquant.strategies import build_strategies
from autoquant.workers.crashpoints import crashpoint
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.manual_orders import ManualOrders
from autoquant.workers.strategy import StrategyWorker

log = structlog.get_logger("autoquant.daemon")

#: How often the status file is rewritten (`autoquant status` calls a file older than 5 s stale).
STATUS_PERIOD_S = 1.0


#: The status file's path for a ledger (kept under its old name for callers).
heartbeat_path = status_path


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
        self._status_file = StatusFile(status_path(config.ledger.path.resolve()))
        self._started_ns = self.clock.now_ns()
        self.loop_lag = LoopLag(self.clock)

    def request_stop(self) -> None:
        self.stop_requested.set()

    async def run(self) -> int:
        config = self.config
        # Read-only, before the lock or the migrations write anything: a refused start changes nothing.
        check_api_settings(config)
        refuse_unsafe(config.ledger.path)
        source = build_source(config.marketdata, self.clock, sleep=self.clock.sleep)
        try:
            if isinstance(source, CsvBars):
                bars = await source.load()  # a malformed row fails the start, before anything trades
                assert config.marketdata.csv_path is not None  # the settings require it for csv
                check_csv_symbols(bars, config.marketdata.csv_path, config.strategies)
            with LedgerLock(config.ledger.path):
                if config.broker.kind == "paper":
                    # Checked before the ledger is created or migrated (the broker takes it for good later).
                    with PaperStateLock(config.paper.state_path):
                        pass
                ledger = await Ledger.open(config.ledger.path)
                try:
                    return await self._open_and_run(ledger, source)
                finally:
                    await ledger.close()
        finally:
            await source.close()

    async def _open_and_run(self, ledger: Ledger, source: BarSource) -> int:
        config = self.config
        async with open_broker(config, self.clock) as handle:
            log.info(
                "daemon_starting",
                config=str(config.source.resolve()) if config.source else "built-in defaults",
                ledger=str(config.ledger.path.resolve()),
                paper_state=str(config.paper.state_path.resolve()) if config.broker.kind == "paper" else None,
                broker=config.broker.kind,
            )
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
                await self._start_extras(group, system)  # alerts first: start-up's incidents alert too
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
                # The kill switch weighs its triggers once before READY: the ready line and READY's
                # STATUS carry the trading state the daemon will actually trade in.
                await system.killswitch.check()
                for name in ("execution", "reconciliation", "killswitch", "strategy"):
                    supervisor.start(group, specs[name])
                if "backup" in specs:  # [backup] dir: scheduled backups, off the loop
                    supervisor.start(group, specs["backup"])
                # Operators' manual orders reach the outbox only once it runs (after start-up resolution).
                manual = ManualOrders(
                    system.ledger,
                    system.execution,
                    self.clock,
                    heartbeat=supervisor.heartbeat("manual_orders"),
                )
                supervisor.start(group, WorkerSpec("manual_orders", manual.run))
                if self.notifier.enabled and self.notifier.watchdog_interval_s() is not None:
                    pinger = WatchdogPinger(self.notifier, supervisor.healthy, clock=self.clock)
                    supervisor.start(group, WorkerSpec("watchdog", pinger.run))
                supervisor.start(
                    group,
                    WorkerSpec("status", lambda: self._publish_status(system), restart_on_exit=True),
                )
                if config.api.listen is not None:
                    supervisor.start(group, WorkerSpec("api", ApiChild(config).run, restart_on_exit=True))
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
            self._status_file.write(await self._status_body(system, stopped=True))
        worker = system.strategy_worker
        log.info("daemon_stopped", decisions=worker.decisions, orders=worker.orders)
        if self.fatal is not None:
            name, cause = self.fatal
            raise AutoquantError(f"worker {name} failed and no restart can cure it: {cause}") from cause
        return 0

    async def _start_extras(self, group: asyncio.TaskGroup, system: System) -> None:
        """The loop-lag probe, alerts and the dead-man's switch (issue 12): none can stop trading."""
        config, supervisor = self.config, system.supervisor
        self.loop_lag.heartbeat = supervisor.heartbeat("looplag")
        supervisor.start(group, WorkerSpec("looplag", self.loop_lag.run))
        if alerting_enabled(config):
            worker = alert_worker(config, system.ledger, self.clock)
            await worker.prepare()
            supervisor.start(group, alert_spec(worker, self.clock))
        heartbeat = heartbeat_spec(config, lambda: self.ready.is_set() and supervisor.healthy(), self.clock)
        if heartbeat is not None:
            supervisor.start(group, heartbeat)

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
                    reason=(
                        f"worker {name} keeps crashing ({error!r}); see the logs, "
                        'then `autoquant resume --reason "…"`'
                    ),
                    actor="supervisor",
                    local_ts_ns=self.clock.now_ns(),
                )
            )
            log.error("trading_halted_on_crashes", crashed_worker=name)

        return halt

    async def _publish_status(self, system: System) -> None:
        """Every second, the daemon's liveness for `autoquant status` (a side file: heartbeats are not
        ledger history); it never fails on a full disk (``StatusFile`` writes in place then)."""
        beat = system.supervisor.heartbeat("status")
        while True:
            beat()
            await self._record_space_halt(system.ledger)
            self._status_file.write(await self._status_body(system))
            await self.clock.sleep(STATUS_PERIOD_S)  # a publishing period

    async def _record_space_halt(self, ledger: Ledger) -> None:
        """After a full disk (trading halted in memory meanwhile), record the HALT as soon as the ledger
        takes writes again: trading stays halted until an operator resumes, as after any halt."""
        full = ledger.halted_for_space
        if full is None:
            return
        control = Control(
            kind=ControlKind.HALT,
            scope=ACCOUNT,
            reason="the ledger's disk was full: no order was reserved while it was; check the disk and "
            "the logs, then `autoquant resume`",
            actor="daemon",
            local_ts_ns=self.clock.now_ns(),
        )
        try:
            await ledger.record_halt_for_space(control)
        except LedgerFull:
            return  # still full: the next turn tries again
        log.warning("trading_halted_after_disk_full", error=str(full))

    async def _status_body(self, system: System, *, stopped: bool = False) -> dict[str, Any]:
        clock, supervisor = self.clock, system.supervisor
        now_ns, now_mono = clock.now_ns(), clock.monotonic()
        full = system.ledger.disk_full
        workers = {
            name: {
                "running": status.running and not stopped,
                "finished": status.finished,
                "waiting": status.waiting if full is not None else None,
                "restarts": status.restarts,
                "last_heartbeat": iso_utc(now_ns - int((now_mono - supervisor.last_beat(name)) * 1e9)),
            }
            for name, status in supervisor.status.items()
        }
        try:
            controls = await system.gate.refresh_controls()
            trading_state = controls.trading_state.value
        except LedgerError:
            trading_state = None  # the ledger's own answer is shown by `status`
        reasons = unhealthy_reasons(system)
        return {
            "pid": os.getpid(),
            "started": iso_utc(self._started_ns),
            "written": iso_utc(now_ns),
            "stopped": stopped,
            "trading_state": trading_state,
            "healthy": not reasons and not stopped,
            "unhealthy": reasons,
            "broker": system.reachability.snapshot(),
            "reconciliation_failure": system.reconciler.last_failure,
            "ledger_disk_full": None if full is None else str(full),
            "market_data_ended": market_data_ended(system),
            "marks": {
                symbol: {"price": str(price), "bar_time": last_bar_time(system, symbol)}
                for symbol, price in sorted(system.market.last_prices.items())
            },
            "log_records_dropped": None if self.logging is None else self.logging.dropped,
            "workers": workers,
            "metrics": status_metrics(self.loop_lag, system.ledger),
        }

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
    """Hand the GIL back to the event loop sooner, and keep the collector's full passes short
    (process-wide; the daemon and the bench call it once their modules are imported).

    ``gc.freeze`` moves every object alive now (the imported modules, their classes and functions:
    some 55,000 objects) out of the collector's reach. A full collection walked them all, about 70 ms
    with the loop stopped (measured on this 2-core VM); afterwards it walks only what the daemon
    allocated since. Frozen objects are never freed, which is what module-level objects are anyway.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.collect()  # what is garbage now is not frozen
    gc.freeze()


def run_daemon(config: Config) -> int:
    prefer_loop_latency()
    # By hand as under systemd (UMask=): the ledger, its WAL, the logs and the state files it creates
    # are readable by the owner and the group at most, never by everyone.
    os.umask(0o027)
    handle = configure_logging(config.logging)
    try:
        return asyncio.run(Daemon(config, logging=handle).run())
    finally:
        handle.close()


def describe_reconciliation(clean: bool, summary: dict[str, Any]) -> str:
    """One reconciliation's outcome in words (``autoquant reconcile``)."""
    parts = [
        f"{summary.get('orders_checked', 0)} order(s) checked",
        f"{summary.get('broker_fills', 0)} broker fill(s) read",
        f"{summary.get('fills_appended', 0)} fill(s) appended",
        f"{summary.get('events_applied', 0)} order(s) advanced",
        f"cash check {summary.get('cash_check', 'skipped')}",
    ]
    text = ("clean" if clean else "mismatch") + ": " + ", ".join(parts)
    for incident in summary.get("incidents", []):
        state = "opened" if incident.get("new") else "still open"
        text += (
            f"\nincident {incident.get('id')} {state}: {incident.get('kind')} {incident.get('subject')}"
            f" [{incident.get('scope')}] (`autoquant incidents --open` says what to do)"
        )
    return text


async def _reconcile(config: Config, out: TextIO, as_json: bool = False) -> int:
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
    if as_json:
        body = {"result": "clean" if outcome.clean else "mismatch", "summary": outcome.summary}
        out.write(json.dumps({**body, "pending_orders": pending}, indent=2, default=str) + "\n")
        return 0 if outcome.clean else 1
    out.write(describe_reconciliation(outcome.clean, outcome.summary) + "\n")
    if pending:
        out.write(
            f"{len(pending)} order(s) RESERVED or UNKNOWN are not at the broker; the daemon resolves them "
            f"at its next start (lookup, then send under the same id): {', '.join(pending)}\n"
        )
    return 0 if outcome.clean else 1


def reconcile_once(config: Config, out: TextIO, as_json: bool = False) -> int:
    """``autoquant reconcile``: exit 0 clean, 1 mismatch (incident recorded), 2 error. It takes the
    ledger lock, so it needs the daemon stopped (the daemon reconciles by itself while it runs)."""
    # Its log lines go where the daemon's go (the log file, and stderr), never into stdout's answer.
    handle = configure_logging(config.logging, renderer_process=False)
    try:
        return asyncio.run(_reconcile(config, out, as_json))
    except BrokerError as error:
        sys.stderr.write(f"autoquant: reconciliation failed: {error}\n")
        return 2
    finally:
        handle.close()
