"""Turning what the broker says into ledger events: the only place broker states become our events."""

from __future__ import annotations

from autoquant.domain.broker import OrderUpdate
from autoquant.domain.orders import OrderEvent, OrderEventKind
from autoquant.domain.reconciliation import event_for_state

__all__ = ["event_for_state", "event_for_update"]


def event_for_update(update: OrderUpdate) -> OrderEvent:
    return OrderEvent(
        client_order_id=update.order.client_order_id,
        kind=update.kind,
        broker_order_id=update.order.broker_order_id,
        filled_qty=update.order.filled_qty,
        reason=update.raw_event if update.kind is OrderEventKind.REJECTED else None,
        broker_ts_ns=update.broker_ts_ns,
        local_ts_ns=update.local_ts_ns,
    )
