"""The kill-switch worker: keeps the trading state current and trips it when a trigger fires.

Trading state and pause flags are ledger control events, so the CLI (another process) changes them by
appending a control; this worker notices within ``poll_s`` and hands the new state to the risk gate.
Triggers: the daily loss limit and the drawdown limit (→ REDUCING: only exposure-shrinking orders), an
order stuck in UNKNOWN past a bound, repeated rejects, an account-wide incident opened since the last
resume (→ HALTED). HALTED refuses new orders while reconciliation, order updates and cancels go on.
Nothing resumes by itself: ``resume`` is an operator's act.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from autoquant.brokers.port import Broker
from autoquant.domain.clock import Clock
from autoquant.domain.controls import ACCOUNT, Control, ControlKind, ControlState, TradingState
from autoquant.domain.orders import OrderStatus
from autoquant.errors import BrokerError
from autoquant.ledger import Ledger
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.risk_gate import RiskGate
from autoquant.workers.settings import RiskSettings

log = structlog.get_logger("autoquant.killswitch")
ACTOR = "kill-switch"
ACCOUNT_POLL_TIMEOUT_S = 5.0


class KillSwitch:
    def __init__(
        self,
        ledger: Ledger,
        broker: Broker,
        clock: Clock,
        gate: RiskGate,
        execution: ExecutionWorker,
        settings: RiskSettings,
        *,
        poll_s: float = 0.25,
        account_poll_s: float = 5.0,
        on_change: Callable[[ControlState], Awaitable[None]] | None = None,
        heartbeat: Callable[[], None] = lambda: None,
    ) -> None:
        self.ledger = ledger
        self.broker = broker
        self.clock = clock
        self.gate = gate
        self.execution = execution
        self.settings = settings
        self.poll_s = poll_s
        self.account_poll_s = account_poll_s
        self.on_change = on_change
        self.heartbeat = heartbeat
        self._state: ControlState | None = None
        self._last_account = 0.0

    async def refresh(self) -> ControlState:
        """Re-read controls if any were appended (by us, the CLI or the reconciler) and act on changes."""
        before = self._state
        state = await self.gate.refresh_controls()
        self._state = state
        if before is not None and (state.trading_state, sorted(state.paused)) == (
            before.trading_state,
            sorted(before.paused),
        ):
            return state
        log.info(
            "controls_changed",
            trading_state=state.trading_state.value,
            paused=sorted(state.paused),
            reason=state.state_reason,
        )
        was_halted = before is not None and before.trading_state is TradingState.HALTED
        if state.trading_state is TradingState.HALTED and not was_halted and self.settings.cancel_all_on_halt:
            canceled = await self.execution.cancel_all_open("cancel all on halt")
            log.warning("orders_canceled_on_halt", count=canceled)
        if self.on_change is not None:
            await self.on_change(state)
        return state

    async def trip(self, kind: ControlKind, reason: str) -> None:
        log.warning("kill_switch_tripped", to=kind.value, reason=reason)
        await self.ledger.append_control(
            Control(kind=kind, scope=ACCOUNT, reason=reason, actor=ACTOR, local_ts_ns=self.clock.now_ns())
        )
        await self.refresh()

    async def carry_out_cancels(self) -> None:
        """Operator cancel requests (`autoquant cancel`): cancels go on in every trading state."""
        for request in await self.ledger.pending_cancel_requests():
            if request.target == "*":
                count = await self.execution.cancel_all_open(request.reason)
                detail = f"cancel requested for {count} open order(s)"
            else:
                order = await self.execution.cancel(request.target, request.reason)
                count = 0 if order is None else 1
                detail = f"{request.target}: {'no such order' if order is None else order.status.value}"
            log.info("operator_cancel_done", target=request.target, detail=detail, actor=request.actor)
            await self.ledger.record_cancel_outcome(request.seq, count, detail, self.clock.now_ns())

    async def check(self) -> None:
        """Evaluate every trigger once."""
        await self.carry_out_cancels()
        state = await self.refresh()
        if time.monotonic() - self._last_account >= self.account_poll_s:
            self._last_account = time.monotonic()
            try:
                # Bounded: a hung broker must not stall the trading-state checks (or the watchdog).
                async with asyncio.timeout(ACCOUNT_POLL_TIMEOUT_S):
                    self.gate.equity = (await self.broker.account()).equity
            except (BrokerError, TimeoutError) as error:
                log.warning("account_poll_failed", error=str(error) or "timed out")
        if state.trading_state is TradingState.HALTED:
            return
        reason = await self._halt_reason(state)
        if reason is not None:
            await self.trip(ControlKind.HALT, reason)
            return
        if state.trading_state is TradingState.ACTIVE:
            reason = await self._reduce_reason()
            if reason is not None:
                await self.trip(ControlKind.REDUCE, reason)

    async def _halt_reason(self, state: ControlState) -> str | None:
        now = self.clock.now_ns()
        bound_ns = int(self.settings.max_unknown_age_s * 1e9)
        for order in await self.ledger.open_orders():
            if order.status is OrderStatus.UNKNOWN and now - order.updated_ns > bound_ns:
                return (
                    f"order {order.client_order_id} has been UNKNOWN for more than "
                    f"{self.settings.max_unknown_age_s:g}s: check it at the broker, then run reconcile"
                )
        rejects = self.execution.stats.consecutive_rejects
        if rejects >= self.settings.max_consecutive_rejects:
            self.execution.stats.consecutive_rejects = 0
            return f"{rejects} orders rejected in a row: read `autoquant orders` for the broker's reasons"
        for incident in await self.ledger.incidents(open_only=True):
            if incident.scope == ACCOUNT and incident.local_ts_ns > state.state_since_ns:
                return f"open incident {incident.incident_id}: {incident.message}"
        return None

    async def _reduce_reason(self) -> str | None:
        snapshot = await self.gate.snapshot()
        loss = snapshot.start_equity - snapshot.equity
        if loss > self.settings.daily_loss_limit:
            return f"daily loss {loss} exceeds the limit {self.settings.daily_loss_limit}"
        drawdown = snapshot.peak_equity - snapshot.equity
        if drawdown > self.settings.max_drawdown:
            return f"drawdown {drawdown} from the day's peak exceeds the limit {self.settings.max_drawdown}"
        return None

    async def run(self) -> None:
        while True:
            self.heartbeat()
            await self.check()
            await asyncio.sleep(self.poll_s)  # a polling period, not a wait for a condition
