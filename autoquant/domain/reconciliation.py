"""Reconciliation as a pure function: the ledger's view and the broker's report in, repairs and incidents out.

Only the unambiguous is repaired (DESIGN, "Reconciliation repairs only the unambiguous"):

- a fill the broker reports, with an execution id the ledger lacks, for an order the ledger reserved,
  is appended;
- an order the ledger knows that the broker shows in a later state advances, by the same event the
  execution worker would apply (``event_for_state``).

Everything else is an incident for the operator, with the action that clears it:

- ``unknown_order``: the broker has an order (open, or with fills) whose client order id this ledger never
  reserved. Account-wide: something else trades this account.
- ``missing_order``: the ledger has an order the broker acknowledged (ACCEPTED, PARTIALLY_FILLED,
  PENDING_CANCEL) that the broker does not know. RESERVED and UNKNOWN orders the broker does not know are
  not incidents: the execution worker sends those again under the same id.
- ``order_open_at_broker``: an order the ledger has closed is still working at the broker.
- ``fill_mismatch``: a fill names an order the ledger knows, but with another symbol or side.
- ``illegal_transition``: the broker's state would move an order by an event the state table refuses.
- ``position_mismatch``: after the repairs, the ledger's quantity in a symbol is not the broker's, and no
  fill of an unknown order explains the difference. Both sides are taken as of the same fills: the
  ledger's fills appended after the broker was asked (``LedgerView.later_fills``) that the broker's
  report does not list happened after its reads, so they are taken out of the ledger's side; a symbol
  whose broker fills moved while its positions were read (``BrokerReport.unsettled_symbols``) is left
  to the next run.
- ``cash_mismatch``: the broker's cash moved since the last run by an amount the fills do not explain.

Repairs are returned even when there are incidents: a fill the broker reports happened, whatever else
is wrong. The diff is idempotent: applying its repairs and diffing again yields nothing to do.

The models that go in and out are in ``reconciliation_models`` and the cash check in ``cash_check``;
their public names are re-exported here, so ``from autoquant.domain.reconciliation import LedgerView``
keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from autoquant.domain.broker import BrokerOrderState
from autoquant.domain.cash_check import MAX_AMBIGUOUS_FILLS, cash_effect, check_cash, fill_time_ns
from autoquant.domain.controls import ACCOUNT
from autoquant.domain.errors import IllegalTransition
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order, OrderEvent, OrderEventKind, OrderStatus, apply
from autoquant.domain.reconciliation_models import (
    BrokerReport,
    CashBaseline,
    IncidentDraft,
    LedgerView,
    ReconciliationResult,
)

__all__ = [
    "ACKNOWLEDGED",
    "MAX_AMBIGUOUS_FILLS",
    "BrokerReport",
    "CashBaseline",
    "IncidentDraft",
    "LedgerView",
    "ReconciliationResult",
    "cash_effect",
    "diff",
    "event_for_state",
    "fill_time_ns",
]

_ZERO = Decimal(0)

#: Ledger states in which the broker has acknowledged the order, so it must know it.
ACKNOWLEDGED = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_CANCEL})

_EVENT_FOR_STATUS = {
    OrderStatus.ACCEPTED: OrderEventKind.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED: OrderEventKind.PARTIAL_FILL,
    OrderStatus.FILLED: OrderEventKind.FILL,
    OrderStatus.PENDING_CANCEL: OrderEventKind.CANCEL_REQUESTED,
    OrderStatus.CANCELED: OrderEventKind.CANCELED,
    OrderStatus.EXPIRED: OrderEventKind.EXPIRED,
    OrderStatus.REJECTED: OrderEventKind.REJECTED,
    OrderStatus.REPLACED: OrderEventKind.REPLACED,
}


def then_resume(scope: str) -> str:
    """The end of an incident's action: resolve it, then resume what it paused (a resume over an open
    incident is refused without ``--force``)."""
    which = "" if scope == ACCOUNT else f" --strategy {scope}"
    return f'then `autoquant resolve ID --note "…"` and `autoquant resume{which} --reason "…"`'


def event_for_state(state: BrokerOrderState, local_ts_ns: int, reason: str | None = None) -> OrderEvent:
    """The event that brings a ledger order to the state the broker reports (the one such mapping)."""
    kind = _EVENT_FOR_STATUS.get(state.status, OrderEventKind.ACCEPTED)
    return OrderEvent(
        client_order_id=state.client_order_id,
        kind=kind,
        broker_order_id=state.broker_order_id,
        filled_qty=state.filled_qty,
        reason=reason,
        broker_ts_ns=state.updated_ns,
        local_ts_ns=local_ts_ns,
    )


def diff(view: LedgerView, report: BrokerReport) -> ReconciliationResult:
    """Compare the ledger's view with the broker's report; return the repairs and the incidents."""
    incidents: list[IncidentDraft] = []
    fills_to_append, unknown_fills, contradicting = _sort_fills(view, report)
    incidents.extend(_unknown_orders(view, report, unknown_fills))
    incidents.extend(contradicting)
    events, order_incidents = _order_repairs(view, report)
    incidents.extend(order_incidents)
    incidents.extend(_positions(view, report, fills_to_append, unknown_fills))
    cash_check, cash_incident = check_cash(
        view.cash, report.account, report.as_of_ns, (*fills_to_append, *unknown_fills)
    )
    if cash_incident is not None:
        incidents.append(cash_incident)
    return ReconciliationResult(
        fills_to_append=tuple(fills_to_append),
        events_to_apply=tuple(events),
        incidents=tuple(incidents),
        cash_check=cash_check,
    )


def _sort_fills(view: LedgerView, report: BrokerReport) -> tuple[list[Fill], list[Fill], list[IncidentDraft]]:
    """The broker's fills the ledger lacks: those of orders it knows, those of orders it never reserved,
    and incidents for fills whose symbol or side contradict the order they name (never appended)."""
    missed: list[Fill] = []
    unknown: list[Fill] = []
    contradicting: list[IncidentDraft] = []
    seen: set[str] = set()
    for fill in report.fills:
        if fill.execution_id in view.execution_ids or fill.execution_id in seen:
            continue
        seen.add(fill.execution_id)
        order = view.order(fill.client_order_id)
        if order is None:
            unknown.append(fill)
        elif (order.symbol, order.side) != (fill.symbol, fill.side):
            contradicting.append(_fill_mismatch(order, fill))
        else:
            missed.append(fill)
    return missed, unknown, contradicting


def _fill_mismatch(order: Order, fill: Fill) -> IncidentDraft:
    return IncidentDraft(
        kind="fill_mismatch",
        subject=fill.execution_id,
        scope=order.strategy_id,
        message=(
            f"the broker reports fill {fill.execution_id} ({fill.side.value} {fill.qty} {fill.symbol}) for "
            f"order {order.client_order_id}, which the ledger has as {order.side.value} {order.symbol}"
        ),
        action=(
            f"check order {order.client_order_id} and execution {fill.execution_id} at the broker, "
            + then_resume(order.strategy_id)
        ),
        details={
            "client_order_id": order.client_order_id,
            "execution_id": fill.execution_id,
            "fill": fill.model_dump(mode="json"),
        },
    )


def _unknown_orders(view: LedgerView, report: BrokerReport, unknown_fills: list[Fill]) -> list[IncidentDraft]:
    by_subject: dict[str, dict[str, Any]] = {}
    for state in report.open_orders:
        if view.order(state.client_order_id) is None:
            by_subject.setdefault(
                state.broker_order_id,
                {
                    "client_order_id": state.client_order_id,
                    "symbol": state.symbol,
                    "side": state.side.value,
                    "qty": str(state.qty),
                    "status": state.status.value,
                    "filled_qty": str(state.filled_qty),
                },
            )
    for fill in unknown_fills:
        subject = fill.broker_order_id or fill.client_order_id
        entry = by_subject.setdefault(
            subject,
            {"client_order_id": fill.client_order_id, "symbol": fill.symbol, "side": fill.side.value},
        )
        entry.setdefault("execution_ids", []).append(fill.execution_id)
    return [
        IncidentDraft(
            kind="unknown_order",
            subject=subject,
            scope=ACCOUNT,
            message=(
                f"the broker has order {subject} ({entry['client_order_id']}, {entry['side']} "
                f"{entry['symbol']}) that this ledger never reserved"
            ),
            action=(
                f"find who placed order {subject}; cancel it at the broker (or close the position it made), "
                + then_resume(ACCOUNT)
            ),
            details=entry,
        )
        for subject, entry in by_subject.items()
    ]


def _order_repairs(view: LedgerView, report: BrokerReport) -> tuple[list[OrderEvent], list[IncidentDraft]]:
    events: list[OrderEvent] = []
    incidents: list[IncidentDraft] = []
    looked_up = dict(report.order_states)
    for listed in report.open_orders:
        looked_up.setdefault(listed.client_order_id, listed)
    for order in view.open_orders:
        if order.client_order_id not in looked_up:
            continue  # not asked about: nothing to say
        state = looked_up[order.client_order_id]
        if state is None:
            if order.status in ACKNOWLEDGED:
                incidents.append(_missing(order))
            continue
        _advance(order, state, report.as_of_ns, events, incidents)
    open_ids = {order.client_order_id for order in view.open_orders}
    for coid, known in view.known_orders.items():
        reported = looked_up.get(coid)
        if coid in open_ids or reported is None:
            continue
        legal = _advance(known, reported, report.as_of_ns, events, incidents)
        if legal and reported.status.is_open and known.status.is_terminal:
            incidents.append(_open_at_broker(known, reported))
    return events, incidents


def _advance(
    order: Order,
    state: BrokerOrderState,
    now_ns: int,
    events: list[OrderEvent],
    incidents: list[IncidentDraft],
) -> bool:
    """Append the event that advances ``order`` to ``state`` if it changes anything; False if illegal."""
    event = event_for_state(state, now_ns, reason="reconciliation")
    try:
        after = apply(order, event)
    except IllegalTransition as error:
        incidents.append(
            IncidentDraft(
                kind="illegal_transition",
                subject=f"{order.client_order_id}:{event.kind.value}",
                scope=order.strategy_id,
                message=str(error),
                action=(
                    f"check order {order.client_order_id} at the broker (it reports {state.status.value}, "
                    f"filled {state.filled_qty}) against `autoquant trace {order.client_order_id}`, "
                    + then_resume(order.strategy_id)
                ),
                details={
                    "client_order_id": order.client_order_id,
                    "ledger_status": order.status.value,
                    "broker_status": state.status.value,
                    "event": event.kind.value,
                    "broker_filled_qty": str(state.filled_qty),
                },
            )
        )
        return False
    if after is not order:
        events.append(event)
    return True


def _missing(order: Order) -> IncidentDraft:
    return IncidentDraft(
        kind="missing_order",
        subject=order.client_order_id,
        scope=order.strategy_id,
        message=(
            f"order {order.client_order_id} is {order.status.value} in the ledger but the broker "
            "has no order under that client order id"
        ),
        action=(
            f"look for order {order.client_order_id} (broker id {order.broker_order_id}) in the broker's "
            f"order history; if it is gone, check the position in {order.symbol}, "
            + then_resume(order.strategy_id)
        ),
        details={
            "client_order_id": order.client_order_id,
            "broker_order_id": order.broker_order_id,
            "status": order.status.value,
            "symbol": order.symbol,
            "filled_qty": str(order.filled_qty),
        },
    )


def _open_at_broker(order: Order, state: BrokerOrderState) -> IncidentDraft:
    return IncidentDraft(
        kind="order_open_at_broker",
        subject=order.client_order_id,
        scope=order.strategy_id,
        message=(
            f"order {order.client_order_id} is {order.status.value} in the ledger but still "
            f"{state.status.value} at the broker"
        ),
        action=(f"cancel order {state.broker_order_id} at the broker, " + then_resume(order.strategy_id)),
        details={
            "client_order_id": order.client_order_id,
            "broker_order_id": state.broker_order_id,
            "ledger_status": order.status.value,
            "broker_status": state.status.value,
        },
    )


def _signed_totals(fills: Iterable[Fill]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for fill in fills:
        totals[fill.symbol] = totals.get(fill.symbol, _ZERO) + fill.signed_qty
    return totals


def _as_of_report(view: LedgerView, report: BrokerReport) -> dict[str, Decimal]:
    """The ledger's positions as of the broker's fills: without the ledger's later fills the report does
    not list (they landed after the broker's reads, so its positions cannot hold them yet).

    A fill the ledger had before the broker was asked is never taken out, so a position the broker moved
    without a fill the ledger knows still differs.
    """
    reported = {fill.execution_id for fill in report.fills}
    unreported = {f.execution_id: f for f in view.later_fills if f.execution_id not in reported}
    positions = dict(view.positions)
    for symbol, qty in _signed_totals(unreported.values()).items():
        positions[symbol] = positions.get(symbol, _ZERO) - qty
    return positions


def _positions(
    view: LedgerView, report: BrokerReport, missed: list[Fill], unknown_fills: list[Fill]
) -> list[IncidentDraft]:
    repaired = _as_of_report(view, report)
    for symbol, qty in _signed_totals(missed).items():
        repaired[symbol] = repaired.get(symbol, _ZERO) + qty
    explained = _signed_totals(unknown_fills)
    broker = {position.symbol: position.qty for position in report.positions}
    incidents = []
    for symbol in sorted(set(repaired) | set(broker)):
        if symbol in report.unsettled_symbols:
            continue
        ledger_qty = repaired.get(symbol, _ZERO)
        broker_qty = broker.get(symbol, _ZERO)
        if ledger_qty + explained.get(symbol, _ZERO) == broker_qty:
            continue
        strategies = sorted(view.strategies_by_symbol.get(symbol, frozenset()))
        scope = strategies[0] if len(strategies) == 1 else ACCOUNT
        incidents.append(
            IncidentDraft(
                kind="position_mismatch",
                subject=symbol,
                scope=scope,
                message=(
                    f"{symbol}: the ledger holds {ledger_qty} after repairs, the broker holds {broker_qty}; "
                    "no reported fill explains the difference"
                ),
                action=(
                    f"compare `autoquant fills --symbol {symbol}` with the broker's executions in {symbol}, "
                    f"close or record the difference of {broker_qty - ledger_qty}, " + then_resume(scope)
                ),
                details={
                    "symbol": symbol,
                    "ledger_qty": str(ledger_qty),
                    "broker_qty": str(broker_qty),
                    "difference": str(broker_qty - ledger_qty),
                    "strategies": strategies,
                },
            )
        )
    return incidents
