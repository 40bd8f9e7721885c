"""The updates the paper exchange emits about an order, worded as Alpaca words them.

Updates, in order, per order: ``ACCEPTED`` ("new") at submit; then zero or more ``PARTIAL_FILL``
("partial_fill"), then one ``FILL`` ("fill"), or a final ``CANCELED`` / ``EXPIRED`` / ``REJECTED``, or
``REPLACED`` ("replaced") when a replace ended it (the new order then gets its own ``ACCEPTED``).
Every update carries the full order state after the event; fill updates carry their ``Fill``. The
Alpaca words ride along as ``raw_event`` / ``raw_status``, as they would from the real venue.

The order states here are the ones those updates carry: pure functions over the domain models, no
clock, no I/O; the engine decides *when* each applies.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from autoquant.domain.broker import BrokerOrderState, OrderRequest, OrderUpdate
from autoquant.domain.fills import Fill
from autoquant.domain.orders import OrderEventKind, OrderStatus

#: The Alpaca words for our events and statuses, kept on updates as ``raw_event`` / ``raw_status``.
RAW_EVENT: Final = {
    OrderEventKind.ACCEPTED: "new",
    OrderEventKind.PARTIAL_FILL: "partial_fill",
    OrderEventKind.FILL: "fill",
    OrderEventKind.CANCELED: "canceled",
    OrderEventKind.EXPIRED: "expired",
    OrderEventKind.REJECTED: "rejected",
    OrderEventKind.REPLACED: "replaced",
}
RAW_STATUS: Final = {
    OrderStatus.ACCEPTED: "new",
    OrderStatus.PARTIALLY_FILLED: "partially_filled",
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELED: "canceled",
    OrderStatus.EXPIRED: "expired",
    OrderStatus.REJECTED: "rejected",
    OrderStatus.REPLACED: "replaced",
}
#: The status an order ends in after each of the events that end it.
FINAL_STATUS: Final = {
    OrderEventKind.CANCELED: OrderStatus.CANCELED,
    OrderEventKind.EXPIRED: OrderStatus.EXPIRED,
    OrderEventKind.REJECTED: OrderStatus.REJECTED,
    OrderEventKind.REPLACED: OrderStatus.REPLACED,
}


def order_update(
    kind: OrderEventKind, state: BrokerOrderState, now: int, fill: Fill | None = None
) -> OrderUpdate:
    """The update announcing ``kind`` at ``now`` (the venue's and our time are one here)."""
    return OrderUpdate(
        kind=kind, order=state, fill=fill, broker_ts_ns=now, local_ts_ns=now, raw_event=RAW_EVENT[kind]
    )


def finished_state(state: BrokerOrderState, kind: OrderEventKind, now: int) -> BrokerOrderState:
    """The order's state after ``kind`` (canceled, expired or rejected) ended it at ``now``."""
    status = FINAL_STATUS[kind]
    return state.model_copy(update={"status": status, "updated_ns": now, "raw_status": RAW_STATUS[status]})


def accepted_state(request: OrderRequest, broker_order_id: str, now: int) -> BrokerOrderState:
    """The order as accepted at ``now``: the request's terms, nothing filled yet."""
    return BrokerOrderState(
        broker_order_id=broker_order_id,
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=request.side,
        qty=request.qty or Decimal(0),  # a notional order's quantity is known when it fills
        order_type=request.order_type,
        time_in_force=request.time_in_force,
        limit_price=request.limit_price,
        stop_price=request.stop_price,
        notional=request.notional,
        trail_price=request.trail_price,
        trail_percent=request.trail_percent,
        extended_hours=request.extended_hours,
        status=OrderStatus.ACCEPTED,
        created_ns=now,
        updated_ns=now,
        raw_status=RAW_STATUS[OrderStatus.ACCEPTED],
    )


def filled_state(
    state: BrokerOrderState, filled_qty: Decimal, average: Decimal, now: int
) -> BrokerOrderState:
    """The order after an execution at ``now`` brought it to ``filled_qty`` at ``average``: filled when
    that is all of it, partially filled otherwise."""
    status = OrderStatus.FILLED if filled_qty == state.qty else OrderStatus.PARTIALLY_FILLED
    return state.model_copy(
        update={
            "status": status,
            "filled_qty": filled_qty,
            "filled_avg_price": average,
            "updated_ns": now,
            "raw_status": RAW_STATUS[status],
        }
    )
