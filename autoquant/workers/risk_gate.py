"""The risk gate's I/O side: a fresh account snapshot from the ledger and market state, then the pure check.

It runs twice per order: at decision time (on the intent) and immediately before submission (on the
reserved order), both times with fresh state, and every result becomes a risk event in the ledger.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

from autoquant.domain.clock import Clock
from autoquant.domain.controls import ControlState, TradingState
from autoquant.domain.decisions import OrderIntent
from autoquant.domain.orders import Order
from autoquant.domain.risk import RiskCheck, RiskLimits, RiskSnapshot, RiskVerdict, check
from autoquant.domain.risk_models import open_exposures, open_quantities
from autoquant.domain.values import from_ns, utc_day_start_ns
from autoquant.ledger import Ledger
from autoquant.ledger.ledger import Book
from autoquant.ledger.records import RiskEvent
from autoquant.workers.market import MarketState
from autoquant.workers.settings import RiskSettings

#: The pre-submit check's own rule, beyond the domain's checks: the decision must still be fresh.
DECISION_AGE = "decision_age"


class RiskGate:
    def __init__(self, ledger: Ledger, market: MarketState, clock: Clock, settings: RiskSettings) -> None:
        self.ledger = ledger
        self.market = market
        self.clock = clock
        self.limits: RiskLimits = settings

    async def refresh_controls(self) -> ControlState:
        """Trading state and pause flags now, controls another process (the CLI) appended included."""
        await self.ledger.last_control_seq()  # folds in other processes' controls
        return await self.ledger.control_state()

    async def snapshot(
        self, book: Book | None = None, leave_out: frozenset[str] = frozenset()
    ) -> RiskSnapshot:
        """The account as it stands now, from the ledger's in-memory book (which folds in another
        process's controls when one has committed) and the market state held in memory. Open orders
        named in ``leave_out`` are not counted (the pre-submit check's own order)."""
        now = self.clock.now_ns()
        if book is None:
            book = await self.ledger.book(utc_day_start_ns(now))
        controls = await self.ledger.control_state()
        full = self.ledger.halted_for_space
        if full is not None:
            # The ledger cannot record the halt yet: it holds in memory until the daemon records it.
            controls = controls.model_copy(
                update={"trading_state": TradingState.HALTED, "state_reason": str(full)}
            )
        open_buys, open_sells = open_quantities(
            open_exposures(book.open_orders, self.market.last_prices, leave_out)
        )
        # Equity as the ledger recorded it today (the kill switch's account polls, reconciliation).
        if book.equity is None:
            start = peak = current = Decimal(0)
        else:
            start, peak, current = book.equity
        # Orders sent within the minute, from the ledger (the execution worker sends one at a time, so
        # the previous send's outcome is recorded before the next pre-submit check): survives restarts.
        recent_orders = await self.ledger.submissions_since(now - 60_000_000_000)
        # Not validated again: every value comes from the ledger's projection or the market state,
        # both typed and validated as they were recorded, and this runs twice per order (a busy
        # minute's submission times alone cost tens of microseconds to validate).
        return RiskSnapshot.model_construct(
            now_ns=now,
            positions=book.account_positions(),
            last_prices=dict(self.market.last_prices),
            open_buys=open_buys,
            open_sells=open_sells,
            start_equity=start,
            peak_equity=peak,
            equity=current,
            recent_order_ns=recent_orders,
            data_age_ns=self.market.freshness.ages_ns(),
            controls=controls,
        )

    async def check_intent(self, intent: OrderIntent, book: Book | None = None) -> RiskVerdict:
        return check(intent, await self.snapshot(book), self.limits)

    async def check_order(self, order: Order) -> RiskEvent:
        """The pre-submit re-check of a reserved order (the order's own exposure is not double counted)."""
        # The order being submitted is still open in the ledger: leave it out so it is not counted
        # twice (once as open, once as the new order). A replacement leaves out the order it replaces
        # too: the broker ends that one as it accepts this one.
        leave_out = {order.client_order_id}
        if order.replaces is not None:
            replaced = await self.ledger.get_order(order.replaces)
            if replaced is not None and replaced.status.is_open:
                leave_out.add(replaced.client_order_id)
        snapshot = await self.snapshot(leave_out=frozenset(leave_out))
        # Not validated again: every field comes from the reserved order, validated under the same
        # rules when it was reserved (this runs between the reservation's commit and the submit).
        intent = OrderIntent.model_construct(
            strategy_id=order.strategy_id,
            symbol=order.symbol,
            side=order.side,
            qty=order.remaining_qty,
            order_type=order.order_type,
            time_in_force=order.time_in_force,
            limit_price=order.limit_price,
            stop_price=order.stop_price,
            notional=order.notional,
            trail_price=order.trail_price,
            trail_percent=order.trail_percent,
            extended_hours=order.extended_hours,
            reason="pre_submit",
            decision_id=order.decision_id or order.client_order_id,
            data_time=from_ns(order.created_ns) if order.created_ns else datetime.now(UTC),
        )
        verdict = check(intent, snapshot, self.limits)
        if verdict.allowed and verdict.resized_qty is not None:
            # A reserved order cannot be resized in place: its id names its quantity.
            verdict = verdict._replace(allowed=False, reason=f"would need resizing to {verdict.resized_qty}")
        # A reservation older than the data-age limit carries a stale decision (the daemon was down, or
        # the order sat UNKNOWN): fresh bars since then do not make the old decision fresh.
        age_ns = snapshot.now_ns - order.created_ns
        limit_s = self.limits.max_data_age_s
        stale = order.created_ns > 0 and age_ns > limit_s * 1e9
        decision_age = RiskCheck(
            DECISION_AGE, not stale, "reserved {:.1f}s ago, max {}s", (age_ns / 1e9, limit_s)
        )
        verdict = verdict._replace(checks=(*verdict.checks, decision_age))
        if stale and verdict.allowed:
            verdict = verdict._replace(allowed=False, reason=f"{DECISION_AGE}: {decision_age.detail}")
        return to_event(
            verdict,
            order.strategy_id,
            order.symbol,
            "submit",
            order.decision_id,
            order.client_order_id,
            snapshot.now_ns,
        )


def to_event(
    verdict: RiskVerdict,
    strategy_id: str,
    symbol: str,
    stage: str,
    decision_id: str | None,
    client_order_id: str | None,
    now_ns: int | None = None,
) -> RiskEvent:
    # Not validated: every field is typed here, and the checks are the gate's own (this runs twice per
    # order, on the way to the submit).
    return RiskEvent.model_construct(
        decision_id=decision_id,
        client_order_id=client_order_id,
        strategy_id=strategy_id,
        symbol=symbol,
        stage=stage,
        allowed=verdict.allowed,
        reason=verdict.reason or None,
        checks=verdict.checks,  # their detail text is formatted as the event is written
        local_ts_ns=now_ns if now_ns is not None else time.time_ns(),
    )
