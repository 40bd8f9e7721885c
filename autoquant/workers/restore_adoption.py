"""After a restore: adopt the broker orders this account sent that the restored ledger lacks.

Run by the reconciler at the start of each run while the ledger's restore is open (no clean run since).
It lists every broker order created since the restored point (less a margin for clocks), and for each
one whose client order id follows this account's scheme, that the ledger does not know and that one
strategy can own (``domain.adoption``): reserves it without a decision, marked adopted, appends its
fills (by execution id, so once), then brings it to the broker's state through the state table. The
usual diff that follows then sees a ledger that knows these orders; what it still cannot explain is an
incident as always.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

import structlog

from autoquant.brokers.port import Broker
from autoquant.domain.adoption import adopted_reservation, owner
from autoquant.domain.clock import Clock
from autoquant.domain.reconciliation import event_for_state
from autoquant.ledger import Ledger
from autoquant.ledger.restores import RestoreRecord

log = structlog.get_logger("autoquant.reconciliation")

#: How far before the restored point broker orders are listed (clocks differ; adoption is idempotent).
ADOPT_MARGIN_NS = 600 * 1_000_000_000


async def adopt_after_restore(
    ledger: Ledger,
    broker: Broker,
    clock: Clock,
    strategies_by_symbol: Mapping[str, Set[str]],
    restore: RestoreRecord,
) -> list[str]:
    """Adopt what can be adopted; returns the adopted client order ids (oldest first)."""
    listed = await broker.list_orders(open_only=False, since_ns=restore.backup_last_ns - ADOPT_MARGIN_NS)
    adopted = []
    for state in listed:
        strategy_id = owner(state, strategies_by_symbol)
        if strategy_id is None or await ledger.get_order(state.client_order_id) is not None:
            continue
        order = adopted_reservation(state, strategy_id)
        if await ledger.adopt_order(order, state.broker_order_id, restore.seq, clock.now_ns()):
            adopted.append(state)
    if not adopted:
        return []
    ids = {state.client_order_id for state in adopted}
    for fill in await broker.fills(since_ns=min(state.created_ns for state in adopted)):
        if fill.client_order_id in ids:
            await ledger.append_fill(fill)
    for state in adopted:
        result = await ledger.apply_event(
            event_for_state(state, clock.now_ns(), reason="adopted after restore")
        )
        log.warning(
            "order_adopted_after_restore",
            client_order_id=state.client_order_id,
            broker_order_id=state.broker_order_id,
            status=state.status.value,
            refused=None if result.illegal is None else str(result.illegal),
        )
    # An update for one of these that streamed in before this run was reported as an unknown order;
    # adopted, it is explained now.
    broker_ids = {state.broker_order_id for state in adopted}
    for incident in await ledger.incidents(open_only=True):
        if incident.kind == "unknown_order" and incident.subject in broker_ids:
            await ledger.resolve_incident(
                incident.incident_id, "reconciler", "adopted after the restore", clock.now_ns()
            )
    return [state.client_order_id for state in adopted]
