"""The kill-switch worker: keeps the trading state current and trips it when a trigger fires.

Trading state and pause flags are ledger control events, so the CLI (another process) changes them by
appending a control; this worker notices within ``poll_s`` (the risk gate reads them from the ledger
itself). It shares no object with another worker: the account equity it polls is recorded in the
ledger (the risk gate's daily-loss and drawdown figures come from there), and the cancel-all on HALT
is a cancel request in the ledger that the execution worker carries out.
Triggers: the daily loss limit and the drawdown limit (→ REDUCING: only exposure-shrinking orders), an
order stuck in UNKNOWN past a bound, repeated rejects, an account-wide incident opened since the last
resume (→ HALTED). HALTED refuses new orders while reconciliation, order updates and cancels go on.
Nothing resumes by itself: ``resume`` is an operator's act.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import structlog

from autoquant.brokers.port import Broker
from autoquant.domain.clock import Clock
from autoquant.domain.controls import ACCOUNT, Control, ControlKind, ControlState, TradingState
from autoquant.domain.values import utc_day_start_ns
from autoquant.errors import BrokerError
from autoquant.ledger import Ledger
from autoquant.workers.reachability import BrokerReachability
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
        settings: RiskSettings,
        *,
        poll_s: float = 0.25,
        account_poll_s: float = 5.0,
        on_change: Callable[[ControlState], Awaitable[None]] | None = None,
        heartbeat: Callable[[], None] = lambda: None,
        reachability: BrokerReachability | None = None,
    ) -> None:
        self.ledger = ledger
        self.reachability = reachability
        self.broker = broker
        self.clock = clock
        self.settings = settings
        self.poll_s = poll_s
        self.account_poll_s = account_poll_s
        self.on_change = on_change
        self.heartbeat = heartbeat
        self._state: ControlState | None = None
        self._last_account: float | None = None

    async def refresh(self) -> ControlState:
        """Re-read controls if any were appended (by us, the CLI or the reconciler) and act on changes."""
        before = self._state
        await self.ledger.last_control_seq()  # folds in other processes' controls
        state = await self.ledger.control_state()
        if before is not None and (state.trading_state, sorted(state.paused)) == (
            before.trading_state,
            sorted(before.paused),
        ):
            self._state = state
            return state
        reasons = {"reason": state.state_reason} if state.state_reason else {}
        if state.paused:
            reasons["pause_reasons"] = "; ".join(f"{s}: {f.reason}" for s, f in sorted(state.paused.items()))
        log.info(
            "controls_changed",
            trading_state=state.trading_state.value,
            paused=sorted(state.paused),
            **reasons,
        )
        was_halted = before is not None and before.trading_state is TradingState.HALTED
        if state.trading_state is TradingState.HALTED and not was_halted and self.settings.cancel_all_on_halt:
            # Carried out by the execution worker on its next sweep, like an operator's `cancel --all`.
            await self.ledger.request_cancel("*", "cancel all on halt", ACTOR, self.clock.now_ns())
            log.warning("orders_cancel_requested_on_halt")
        if self.on_change is not None:
            await self.on_change(state)
        # Only now: if a write above failed, the restarted worker sees the change again and retries it.
        self._state = state
        return state

    async def trip(self, kind: ControlKind, reason: str) -> None:
        log.warning("kill_switch_tripped", to=kind.value, reason=reason)
        await self.ledger.append_control(
            Control(kind=kind, scope=ACCOUNT, reason=reason, actor=ACTOR, local_ts_ns=self.clock.now_ns())
        )
        if self.settings.flatten_on_trip:
            # Carried out by the execution worker on its next sweep, like `autoquant halt --flatten`.
            await self.ledger.request_at_broker(
                "flatten", "*", {}, f"kill switch: {reason}", ACTOR, self.clock.now_ns()
            )
            log.warning("flatten_requested_on_trip", to=kind.value)
        await self.refresh()

    async def check(self) -> None:
        """Evaluate every trigger once."""
        state = await self.refresh()
        if self._account_poll_due():
            self._last_account = self.clock.monotonic()
            try:
                # Bounded: a hung broker must not stall the trading-state checks (or the watchdog).
                async with self.clock.timeout(ACCOUNT_POLL_TIMEOUT_S):
                    account = await self.broker.account()
            except (BrokerError, TimeoutError) as error:
                log.warning("account_poll_failed", error=str(error) or "timed out")
                if self.reachability is not None:
                    self.reachability.failed("rest", str(error) or "account poll timed out")
            else:
                if self.reachability is not None:
                    self.reachability.ok("rest")
                # In the ledger, so the risk gate's daily loss and drawdown survive a restart.
                await self.ledger.record_account(account, self.clock.now_ns())
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

    def _account_poll_due(self) -> bool:
        if math.isinf(self.account_poll_s):
            return False  # polling switched off (tests that set equity themselves)
        last = self._last_account
        return last is None or self.clock.monotonic() - last >= self.account_poll_s

    async def _halt_reason(self, state: ControlState) -> str | None:
        now = self.clock.now_ns()
        bound_ns = int(self.settings.max_unknown_age_s * 1e9)
        for order in await self.ledger.unknown_orders():
            if now - order.updated_ns > bound_ns:
                return (
                    f"order {order.client_order_id} has been UNKNOWN for more than "
                    f"{self.settings.max_unknown_age_s:g}s: check it at the broker, then run reconcile"
                )
        # Counted in the ledger since the last control of any kind (a resume, a halt, a pause), so the
        # streak survives a restart and a resumed account is not halted again by the rejects it was
        # halted for; an operator's control therefore also starts a new count.
        rejects = await self.ledger.reject_streak(await self.ledger.control_journal_seq())
        if rejects >= self.settings.max_consecutive_rejects:
            return f"{rejects} orders rejected in a row: read `autoquant orders` for the broker's reasons"
        for incident in await self.ledger.incidents(open_only=True):
            if incident.scope == ACCOUNT and incident.local_ts_ns > state.state_since_ns:
                return f"open incident {incident.incident_id}: {incident.message}"
        return None

    async def _reduce_reason(self) -> str | None:
        # From the ledger's in-memory book, not a walk over the day's account snapshots on disk.
        equity = (await self.ledger.book(utc_day_start_ns(self.clock.now_ns()))).equity
        if equity is None:
            return None
        start, peak, latest = equity
        loss = start - latest
        if loss > self.settings.daily_loss_limit:
            return f"daily loss {loss} exceeds the limit {self.settings.daily_loss_limit}"
        drawdown = peak - latest
        if drawdown > self.settings.max_drawdown:
            return f"drawdown {drawdown} from the day's peak exceeds the limit {self.settings.max_drawdown}"
        return None

    async def run(self) -> None:
        while True:
            self.heartbeat()
            await self.check()
            await self.clock.sleep(self.poll_s)  # a polling period, not a wait for a condition
