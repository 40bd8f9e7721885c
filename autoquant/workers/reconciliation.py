"""The reconciliation worker: gathers the broker's truth, runs the pure diff, appends what it returns.

One run:

1. read the ledger's open orders and its fill cursor, then ask the broker for its account, its open
   orders, each ledger-open order by client order id, every fill since the window start, and its
   positions between two reads of the fills (so the positions are those fills' doing);
2. read the ledger's side of what the broker mentioned (orders it knows; and in one snapshot, the
   execution ids it has, its positions and every fill it appended after the cursor; the cash baseline
   of the previous run) and ``diff`` the two, so positions are compared as of the same fills;
3. append the repairs (fills by execution id, so twice is once; events through the state table);
4. a run that finds incidents looks again once, after its repairs: only incidents seen both times are
   opened, so an update that lands between the broker read and the ledger read is not an accusation;
5. open each incident (the ledger keeps one open per kind and subject) and, for each new one, pause its
   strategy, or halt the account when the scope is the account; record the account snapshot and the run.

The fill window starts at the older of the oldest ledger-open order and the previous run, minus a margin,
so a run costs what happened since the last one, not the whole history. Broker errors propagate from
``run`` (``autoquant reconcile`` exits 2); ``run_forever`` logs them and tries again at the next tick.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

import structlog

from autoquant.brokers.port import Broker
from autoquant.domain.adoption import is_closing_order
from autoquant.domain.broker import BrokerOrderState, BrokerPosition
from autoquant.domain.clock import Clock
from autoquant.domain.controls import ACCOUNT, Control, ControlKind
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order
from autoquant.domain.reconciliation import (
    BrokerReport,
    CashBaseline,
    IncidentDraft,
    LedgerView,
    ReconciliationResult,
    diff,
)
from autoquant.errors import BrokerError
from autoquant.ledger import Ledger
from autoquant.ledger.records import ReconciliationCursor, ReconciliationRun
from autoquant.workers.broker_requests import adopt_unknown
from autoquant.workers.crashpoints import crashpoint
from autoquant.workers.incidents import IncidentReporter
from autoquant.workers.reachability import BrokerReachability
from autoquant.workers.restore_adoption import adopt_after_restore

log = structlog.get_logger("autoquant.reconciliation")

SECOND_NS = 1_000_000_000
#: The first retry after a failed run (seconds); it doubles up to the periodic interval.
RETRY_S = 1.0
#: Reads of (positions, fills) before a symbol whose fills keep moving is left to the next run.
SETTLE_ATTEMPTS = 3


@dataclass(frozen=True)
class ReconcileOutcome:
    """What one run found and did."""

    clean: bool
    fills_appended: int
    events_applied: int
    #: Every incident this run found (new or still open from before), by id.
    incident_ids: list[str] = field(default_factory=list)
    #: The subset opened by this run (each with its pause or halt).
    new_incident_ids: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Pass:
    result: ReconciliationResult
    report: BrokerReport
    fills_seq: int
    fills_appended: int
    events_applied: int
    #: Ledger fills appended after the broker's reads (not in its report), left out of the comparison.
    later_fills: int = 0
    #: Broker orders adopted as the ledger's own in this pass (``Reconciler._adopt_own``).
    adopted: tuple[str, ...] = ()


class Reconciler:
    def __init__(
        self,
        ledger: Ledger,
        broker: Broker,
        clock: Clock,
        strategies_by_symbol: Mapping[str, Set[str]],
        *,
        actor: str = "reconciler",
        window_margin_s: float = 60.0,
        cash_slack_s: float = 2.0,
        incidents: IncidentReporter | None = None,
        reachability: BrokerReachability | None = None,
        heartbeat: Callable[[], None] = lambda: None,
    ) -> None:
        self.ledger = ledger
        self.reachability = reachability
        self.heartbeat = heartbeat
        #: Why the latest run failed (None once a run succeeds): the daemon is not healthy meanwhile.
        self.last_failure: str | None = None
        self.broker = broker
        self.clock = clock
        self.strategies_by_symbol = {s: frozenset(ids) for s, ids in strategies_by_symbol.items()}
        self.actor = actor
        self.incidents = incidents or IncidentReporter(ledger, clock)
        self.window_margin_ns = int(window_margin_s * SECOND_NS)
        self.cash_slack_ns = int(cash_slack_s * SECOND_NS)

    async def run(self, trigger: str) -> ReconcileOutcome:
        """One reconciliation run; raises ``BrokerError`` if the broker cannot be read."""
        try:
            outcome = await self._run(trigger)
        except BrokerError as error:
            self.last_failure = str(error) or type(error).__name__
            if self.reachability is not None:
                self.reachability.failed("rest", error)
            raise
        self.last_failure = None
        if self.reachability is not None:
            self.reachability.ok("rest")
        return outcome

    async def _run(self, trigger: str) -> ReconcileOutcome:
        started = self.clock.now_ns()
        previous = await self.ledger.last_reconciliation()
        adopted = await self._adopt()
        first = await self._pass(previous)
        # Repairs of the first pass are appended; the run is not recorded, incidents not opened.
        crashpoint("during_reconciliation")
        final, incidents = first, list(first.result.incidents)
        if incidents:
            second = await self._pass(previous)
            seen = {(i.kind, i.subject) for i in incidents}
            incidents = [i for i in second.result.incidents if (i.kind, i.subject) in seen]
            final = second
        fills_appended = first.fills_appended + (final.fills_appended if final is not first else 0)
        events_applied = first.events_applied + (final.events_applied if final is not first else 0)
        opened = [await self._open(incident) for incident in incidents]
        report = final.report
        summary: dict[str, Any] = {
            "fills_appended": fills_appended,
            "events_applied": events_applied,
            "incidents": [
                {"id": incident_id, "kind": i.kind, "subject": i.subject, "scope": i.scope, "new": new}
                for i, (incident_id, new) in zip(incidents, opened, strict=True)
            ],
            "cash_check": final.result.cash_check,
            "orders_checked": len(report.order_states),
            "broker_fills": len(report.fills),
        }
        if final.later_fills:
            summary["fills_after_broker_read"] = final.later_fills
        if report.unsettled_symbols:
            summary["positions_unsettled"] = sorted(report.unsettled_symbols)
        if adopted:
            summary["adopted_after_restore"] = adopted
        adopted_own = [*first.adopted, *(final.adopted if final is not first else ())]
        if adopted_own:
            summary["adopted_from_broker"] = adopted_own
        cursor = None
        if report.account is not None:
            # The next run's cash baseline: the cash read at as_of_ns, and the ledger's last fill before it,
            # stored in the run's own transaction (with the account snapshot).
            cursor = ReconciliationCursor(
                fills_seq=final.fills_seq, cash=report.account.cash, cash_at_ns=report.as_of_ns
            )
        clean = not incidents
        await self.ledger.record_reconciliation(
            ReconciliationRun(
                trigger=trigger,
                clean=clean,
                summary=summary,
                started_ns=started,
                finished_ns=self.clock.now_ns(),
            ),
            account=report.account,
            account_ts_ns=report.as_of_ns,
            cursor=cursor,
        )
        outcome = ReconcileOutcome(
            clean=clean,
            fills_appended=fills_appended,
            events_applied=events_applied,
            incident_ids=[incident_id for incident_id, _ in opened],
            new_incident_ids=[incident_id for incident_id, new in opened if new],
            summary=summary,
        )
        counts = {"trigger": trigger, "fills_appended": fills_appended, "events_applied": events_applied}
        if clean:
            log.info("reconciliation_clean", **counts, cash_check=final.result.cash_check)
        else:
            log.warning(
                "reconciliation_mismatch",
                **counts,
                incidents=[f"{i.kind}:{i.subject}" for i in incidents],
                new_incident_ids=outcome.new_incident_ids,
            )
        return outcome

    async def run_forever(self, interval_s: float, wake: asyncio.Event) -> None:
        """Run every ``interval_s`` and whenever ``wake`` is set; a broker error waits for the next turn.

        The startup run (the gate before trading) is the caller's ``run("startup")``; this loop waits first.
        After a failed run it tries again sooner (``RETRY_S``, doubling up to the interval), so the first
        good run comes within seconds of the broker's return. It beats its heartbeat every second.
        """
        retry_s: float | None = None
        while True:
            trigger = await self._wait(retry_s or interval_s, wake)
            self.heartbeat()
            try:
                await self.run(trigger)
            except BrokerError as error:
                log.warning("reconciliation_failed", trigger=trigger, error=str(error))
                retry_s = min(interval_s, RETRY_S if retry_s is None else retry_s * 2)
            else:
                retry_s = None
            self.heartbeat()

    async def _wait(self, period_s: float, wake: asyncio.Event) -> str:
        """Until ``wake`` is set (``wake``) or ``period_s`` passed (``periodic``), beating each second."""
        deadline = self.clock.monotonic() + period_s
        while True:
            self.heartbeat()
            left = deadline - self.clock.monotonic()
            if left <= 0:
                trigger = "periodic"
                break
            try:
                async with self.clock.timeout(min(left, 1.0)):
                    await wake.wait()
            except TimeoutError:
                if left <= 1.0:
                    # The timer was the deadline itself: it is due. (Re-reading the clock could find it a
                    # hair short: asyncio runs a timer within its clock resolution of now, and a virtual
                    # clock does not move by itself, so waiting for the rest would spin for ever.)
                    trigger = "periodic"
                    break
                continue
            trigger = "wake"
            break
        wake.clear()
        return trigger

    async def _adopt(self) -> list[str]:
        """While the ledger's restore is open: adopt this account's orders it lacks, and stop trading
        until an operator has looked (an account-wide incident with its halt)."""
        restore = await self.ledger.open_restore()
        if restore is None:
            return []
        adopted = await adopt_after_restore(
            self.ledger, self.broker, self.clock, self.strategies_by_symbol, restore
        )
        if adopted:
            await self._open(
                IncidentDraft(
                    kind="orders_adopted_after_restore",
                    subject=f"restore-{restore.seq}:{adopted[0]}",
                    scope=ACCOUNT,
                    message=(
                        f"after the restore, {len(adopted)} order(s) this account sent after the backup were "
                        "adopted from the broker (their decisions are unknown); trading waits for an operator"
                    ),
                    action=(
                        "check them with `autoquant orders` and `autoquant positions` against the broker, "
                        'then `autoquant resolve ID --note "…"` and `autoquant resume --reason "…"`'
                    ),
                    details={"restore_seq": restore.seq, "client_order_ids": adopted},
                )
            )
        return adopted

    async def _adopt_own(self, unknown: set[str], broker_open: list[BrokerOrderState]) -> list[str]:
        """Of the broker's orders the ledger never reserved (``unknown``: listed open, or named by a
        fill), those that are its own after all: a replace done at the broker, a flatten's closing order
        (``adopt_unknown``). Reserved here; the pass is then run again, so their states and fills are
        repaired like any order's and none is reported as an unknown order."""
        listed = {state.client_order_id: state for state in broker_open}
        adopted = []
        for coid in sorted(unknown):
            state = listed.get(coid) or await self.broker.get_by_client_order_id(coid)
            if state is None or (state.replaces is None and not is_closing_order(state)):
                continue
            order = await adopt_unknown(self.ledger, self.broker, state, linked=True)
            if order is not None:
                adopted.append(order.client_order_id)
        return adopted

    # -- one pass ----------------------------------------------------------------------------------

    async def _pass(self, previous: ReconciliationRun | None, *, adopting: bool = True) -> _Pass:
        open_orders = await self.ledger.open_orders()
        fills_seq = await self._last_fill_seq()
        as_of = self.clock.now_ns()
        account = await self.broker.account()
        broker_open = await self.broker.list_orders(open_only=True)
        states: dict[str, BrokerOrderState | None] = {}
        for order in open_orders:
            states[order.client_order_id] = await self.broker.get_by_client_order_id(order.client_order_id)
        fills, positions, unsettled = await self._fills_and_positions(
            self._window_start(open_orders, previous)
        )
        # The ledger's side in one snapshot, with every fill appended since the cursor taken before the
        # broker was asked: those the broker did not list landed after its reads (see ``diff``).
        snapshot = await self.ledger.fill_snapshot(fills_seq, (f.execution_id for f in fills))
        execution_ids = snapshot.known_execution_ids

        open_ids = {order.client_order_id for order in open_orders}
        mentioned = {s.client_order_id for s in broker_open} | {f.client_order_id for f in fills}
        # One read for them all, not one per order (a backtest's closing run sees every order it made).
        found = await self.ledger.get_orders(sorted(mentioned - open_ids))
        known = {coid: found[coid] for coid in sorted(found)}
        unknown = (mentioned - open_ids) - set(known)
        if unknown and adopting:
            adopted = await self._adopt_own(unknown, broker_open)
            if adopted:
                again = await self._pass(previous, adopting=False)
                return dataclasses.replace(again, adopted=(*adopted, *again.adopted))
        listed = {s.client_order_id for s in broker_open}
        # One pass over the fills (a pass per known order made each run quadratic in the window's fills,
        # on the loop: 0.5-1.6 s per run once a soak had a couple of thousand fills in its window).
        with_missed_fill = {f.client_order_id for f in fills if f.execution_id not in execution_ids}
        for coid in sorted(known):
            if coid in with_missed_fill and coid not in listed:
                # A closed order with a fill the ledger lacks: its final state comes with the fill.
                states[coid] = await self.broker.get_by_client_order_id(coid)
        view = LedgerView(
            open_orders=tuple(open_orders),
            known_orders=known,
            execution_ids=execution_ids,
            positions=snapshot.positions,
            later_fills=snapshot.later_fills,
            strategies_by_symbol=self.strategies_by_symbol,
            cash=await self._cash_baseline(previous),
        )
        report = BrokerReport(
            open_orders=tuple(broker_open),
            order_states=states,
            fills=tuple(fills),
            positions=tuple(positions),
            unsettled_symbols=unsettled,
            account=account,
            as_of_ns=as_of,
        )
        result = diff(view, report)
        appended, applied = await self._repair(result)
        reported = {f.execution_id for f in fills}
        later = sum(1 for f in snapshot.later_fills if f.execution_id not in reported)
        return _Pass(result, report, fills_seq, appended, applied, later)

    async def _fills_and_positions(
        self, since_ns: int | None
    ) -> tuple[list[Fill], list[BrokerPosition], frozenset[str]]:
        """The broker's fills and its positions as of those fills, and the symbols still moving.

        Positions are read between two reads of the fills; if the second (of the last seconds only, less
        the slack for clocks: a fill that lands now is timed now) lists nothing new, no fill landed in
        between and the positions are exactly what the fills made. Otherwise the new fills join the list
        and the positions are read again (``SETTLE_ATTEMPTS`` times in all); the symbols whose fills
        still moved are returned, for the next run to judge.
        """
        recent_ns = self.clock.now_ns() - self.cash_slack_ns
        if since_ns is not None:
            recent_ns = max(recent_ns, since_ns)
        fills = await self.broker.fills(since_ns=since_ns)
        seen = {f.execution_id for f in fills}
        moved: frozenset[str] = frozenset()
        positions: list[BrokerPosition] = []
        for _ in range(SETTLE_ATTEMPTS):
            positions = await self.broker.positions()
            landed = [f for f in await self.broker.fills(since_ns=recent_ns) if f.execution_id not in seen]
            fills.extend(landed)
            seen.update(f.execution_id for f in landed)
            moved = frozenset(f.symbol for f in landed)
            if not moved:
                break
        if moved:
            log.info("reconciliation_positions_unsettled", symbols=sorted(moved))
        return fills, positions, moved

    def _window_start(self, open_orders: list[Order], previous: ReconciliationRun | None) -> int | None:
        if previous is None:
            return None  # the first run reads everything
        start = min([previous.started_ns, *(order.created_ns for order in open_orders)])
        return start - self.window_margin_ns

    async def _last_fill_seq(self) -> int:
        return await self.ledger.last_fill_seq()

    async def _cash_baseline(self, previous: ReconciliationRun | None) -> CashBaseline | None:
        """The previous run's cash, and the ledger fills that may have moved it since.

        A fill appended before that run read the account happened before the read, so its effect is in
        the baseline cash: only fills appended after (``seq > fills_seq``) and timed after the read
        (less the slack for clocks) are candidates.
        """
        if previous is None:
            return None
        cursor = await self.ledger.reconciliation_cursor()
        if cursor is None:
            return None
        fills = tuple(await self.ledger.fills_after(cursor.fills_seq, cursor.cash_at_ns - self.cash_slack_ns))
        return CashBaseline(
            cash=cursor.cash, at_ns=cursor.cash_at_ns, fills=fills, slack_ns=self.cash_slack_ns
        )

    async def _repair(self, result: ReconciliationResult) -> tuple[int, int]:
        appended = 0
        for fill in result.fills_to_append:
            if await self.ledger.append_fill(fill):
                appended += 1
                log.info(
                    "reconciliation_fill_appended",
                    client_order_id=fill.client_order_id,
                    execution_id=fill.execution_id,
                    qty=str(fill.qty),
                    price=str(fill.price),
                )
        applied = 0
        for event in result.events_to_apply:
            outcome = await self.ledger.apply_event(event)
            if outcome.illegal is not None:
                # The order moved between the diff and now; the next run sees where it is.
                log.warning(
                    "reconciliation_event_refused",
                    client_order_id=event.client_order_id,
                    error=str(outcome.illegal),
                )
            elif outcome.changed:
                applied += 1
                log.info(
                    "reconciliation_order_advanced",
                    client_order_id=event.client_order_id,
                    event_kind=event.kind.value,
                    status=outcome.order.status.value if outcome.order else None,
                )
        return appended, applied

    async def _has_control(self, incident_id: str) -> bool:
        return await self.ledger.incident_has_control(incident_id)

    async def _stored_scope(self, incident_id: str, default: str) -> str:
        stored = await self.ledger.get_incident(incident_id)
        return default if stored is None else stored.scope

    async def _open(self, incident: IncidentDraft) -> tuple[str, bool]:
        """Open the incident and stop what it affects, once per incident.

        An incident another worker opened (the execution worker reports unknown orders and refused
        events as they stream in) gets its pause or halt here, when reconciliation confirms it; an
        incident that already has one (even if an operator has since resumed) does not get another.
        """
        now = self.clock.now_ns()
        incident_id, new = await self.incidents.open(
            incident.kind,
            incident.subject,
            incident.message,
            incident.details,
            scope=incident.scope,
            action=incident.action,
            reconcile=False,  # this is the reconciliation
        )
        if new or not await self._has_control(incident_id):
            scope = incident.scope if new else await self._stored_scope(incident_id, incident.scope)
            kind = ControlKind.HALT if scope == ACCOUNT else ControlKind.PAUSE
            await self.ledger.append_control(
                Control(
                    kind=kind,
                    scope=scope,
                    reason=f"{incident.message} (incident {incident_id})",
                    actor=self.actor,
                    local_ts_ns=now,
                ),
                incident_id=incident_id,
            )
            log.warning(
                "incident_stopped_trading" if new else "incident_confirmed",
                incident_id=incident_id,
                kind=incident.kind,
                subject=incident.subject,
                scope=scope,
                control=kind.value,
                action=incident.action,
            )
        return incident_id, new
