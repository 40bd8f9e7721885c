"""Turning what the broker says into ledger events: the only place broker states become our events."""

from __future__ import annotations

from autoquant.domain.broker import BrokerOrderState, OrderUpdate
from autoquant.domain.orders import OrderEvent, OrderEventKind, OrderStatus

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


def event_for_state(state: BrokerOrderState, local_ts_ns: int, reason: str | None = None) -> OrderEvent:
    """The event that brings a ledger order to the state the broker reports."""
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
