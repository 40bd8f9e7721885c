"""Orders, their events, and the transition table that says which event is legal in which state.

The table is data: ``TRANSITIONS[(state, event)]`` is the state after the event, or ``KEEP`` where the
event is legal but changes no state (a duplicate acknowledgement, a late fill after a cancel). A pair
that is not in the table is illegal; ``apply`` raises ``IllegalTransition`` naming both, and the caller
records an incident. Brokers are messy, so the table accepts what real brokers do: a fill before the
acknowledgement, a late fill after a cancel, a duplicate event, a rejected cancel.

Fill events carry the broker's *cumulative* filled quantity, so applying one twice, or an older one
after a newer one, changes nothing. The fills themselves (with execution ids) live in the ledger.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, model_validator

from autoquant.domain.errors import IllegalTransition, Overfill
from autoquant.domain.order_terms import OrderTerms
from autoquant.domain.values import NonNegative


class OrderStatus(StrEnum):
    RESERVED = "reserved"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    REPLACED = "replaced"
    UNKNOWN = "unknown"
    DENIED = "denied"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_open(self) -> bool:
        return self not in TERMINAL


TERMINAL: Final = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.REJECTED,
        OrderStatus.REPLACED,
        OrderStatus.DENIED,
    }
)


class OrderEventKind(StrEnum):
    SUBMIT_UNKNOWN = "submit_unknown"  # the submit's outcome is not known (timeout, 5xx, drop)
    ACCEPTED = "accepted"
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    CANCEL_REQUESTED = "cancel_requested"
    CANCEL_REJECTED = "cancel_rejected"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    REPLACED = "replaced"
    DENIED = "denied"


S = OrderStatus
E = OrderEventKind


class _Keep:
    """Marker: the event is legal and leaves the status as it is."""

    def __repr__(self) -> str:
        return "KEEP"


class _Restore:
    """Marker: a rejected cancel returns the order to ACCEPTED or PARTIALLY_FILLED."""

    def __repr__(self) -> str:
        return "RESTORE"


KEEP: Final = _Keep()
RESTORE: Final = _Restore()
Outcome = OrderStatus | _Keep | _Restore

# Events every live (sent or maybe-sent) order accepts the same way.
_LIVE: dict[OrderEventKind, Outcome] = {
    E.ACCEPTED: S.ACCEPTED,
    E.PARTIAL_FILL: S.PARTIALLY_FILLED,
    E.FILL: S.FILLED,
    E.CANCEL_REQUESTED: S.PENDING_CANCEL,
    E.CANCEL_REJECTED: KEEP,
    E.CANCELED: S.CANCELED,
    E.EXPIRED: S.EXPIRED,
    E.REJECTED: S.REJECTED,
    E.REPLACED: S.REPLACED,
    E.SUBMIT_UNKNOWN: KEEP,
}

# Events that may still arrive after an order ended: late fills, echoes, our own late requests.
_AFTER_END: dict[OrderEventKind, Outcome] = {
    E.ACCEPTED: KEEP,
    E.SUBMIT_UNKNOWN: KEEP,
    E.CANCEL_REQUESTED: KEEP,
    E.CANCEL_REJECTED: KEEP,
}

TRANSITIONS: Final[dict[tuple[OrderStatus, OrderEventKind], Outcome]] = {
    **{(S.RESERVED, e): o for e, o in _LIVE.items()},
    (S.RESERVED, E.SUBMIT_UNKNOWN): S.UNKNOWN,
    (S.RESERVED, E.DENIED): S.DENIED,
    **{(S.UNKNOWN, e): o for e, o in _LIVE.items()},
    # Not found at the broker after the grace period, and the re-send refused by the risk gate: the
    # order is given up. Should it surface at the broker after all, DENIED + ACCEPTED is an incident.
    (S.UNKNOWN, E.DENIED): S.DENIED,
    **{(S.ACCEPTED, e): o for e, o in _LIVE.items()},
    (S.ACCEPTED, E.ACCEPTED): KEEP,
    **{(S.PARTIALLY_FILLED, e): o for e, o in _LIVE.items()},
    (S.PARTIALLY_FILLED, E.ACCEPTED): KEEP,
    (S.PARTIALLY_FILLED, E.REJECTED): KEEP,  # fills already happened; a reject cannot undo them
    **{(S.PENDING_CANCEL, e): o for e, o in _LIVE.items()},
    (S.PENDING_CANCEL, E.ACCEPTED): KEEP,
    (S.PENDING_CANCEL, E.PARTIAL_FILL): KEEP,
    (S.PENDING_CANCEL, E.CANCEL_REQUESTED): KEEP,
    (S.PENDING_CANCEL, E.CANCEL_REJECTED): RESTORE,
    **{(S.FILLED, e): o for e, o in _AFTER_END.items()},
    (S.FILLED, E.PARTIAL_FILL): KEEP,
    (S.FILLED, E.FILL): KEEP,
    **{(S.CANCELED, e): o for e, o in _AFTER_END.items()},
    (S.CANCELED, E.CANCELED): KEEP,
    (S.CANCELED, E.PARTIAL_FILL): KEEP,  # a late fill: counted, the order stays canceled
    (S.CANCELED, E.FILL): S.FILLED,  # the fill beat the cancel at the venue
    **{(S.EXPIRED, e): o for e, o in _AFTER_END.items()},
    (S.EXPIRED, E.EXPIRED): KEEP,
    (S.EXPIRED, E.PARTIAL_FILL): KEEP,
    (S.EXPIRED, E.FILL): S.FILLED,
    **{(S.REJECTED, e): o for e, o in _AFTER_END.items()},
    (S.REJECTED, E.REJECTED): KEEP,
    **{(S.REPLACED, e): o for e, o in _AFTER_END.items()},
    (S.REPLACED, E.REPLACED): KEEP,
    (S.REPLACED, E.PARTIAL_FILL): KEEP,
    (S.REPLACED, E.FILL): KEEP,
    (S.DENIED, E.DENIED): KEEP,
}


class Order(OrderTerms):
    """The ledger's view of one order: the reservation plus every event applied so far."""

    client_order_id: str
    decision_id: str | None = None
    #: Zero for a notional order: its quantity is only known from its fills (``filled_qty``).
    qty: NonNegative
    status: OrderStatus = OrderStatus.RESERVED
    filled_qty: NonNegative = Decimal(0)
    broker_order_id: str | None = None
    reason: str | None = None
    created_ns: int = 0
    updated_ns: int = 0
    #: The client order id of the order this one replaces (same decision, new terms), if any.
    replaces: str | None = None

    @property
    def remaining_qty(self) -> Decimal:
        """Shares still to fill; zero for a notional order, whose quantity is not known in shares."""
        return self.qty - self.filled_qty if self.notional is None else Decimal(0)


class OrderEvent(BaseModel):
    """Something that happened to an order, as reported by the broker or decided by us."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_order_id: str
    kind: OrderEventKind
    broker_order_id: str | None = None
    #: Cumulative filled quantity as the broker reports it (fill events; optional on others).
    filled_qty: NonNegative | None = None
    reason: str | None = None
    broker_ts_ns: int | None = None
    local_ts_ns: int

    @model_validator(mode="after")
    def _fills_carry_quantity(self) -> OrderEvent:
        if self.kind in (E.PARTIAL_FILL, E.FILL) and self.filled_qty is None:
            raise ValueError("filled_qty is required on fill events")
        return self


def outcome(status: OrderStatus, kind: OrderEventKind) -> Outcome | None:
    """The table's answer for a pair, or None where the pair is illegal."""
    return TRANSITIONS.get((status, kind))


def apply(order: Order, event: OrderEvent) -> Order:
    """The order after ``event``; raises ``IllegalTransition`` for a pair the table refuses."""
    if event.client_order_id != order.client_order_id:
        raise ValueError(f"event for {event.client_order_id} applied to order {order.client_order_id}")
    result = outcome(order.status, event.kind)
    if result is None:
        raise IllegalTransition(order.client_order_id, order.status.value, event.kind.value)
    filled = order.filled_qty
    if event.filled_qty is not None:
        if order.notional is None and event.filled_qty > order.qty:
            raise Overfill(
                order.client_order_id,
                order.status.value,
                event.kind.value,
                f"cumulative fill {event.filled_qty} exceeds order quantity {order.qty}",
            )
        filled = max(filled, event.filled_qty)
    if isinstance(result, _Keep):
        status = order.status
    elif isinstance(result, _Restore):
        status = S.PARTIALLY_FILLED if filled > 0 else S.ACCEPTED
    else:
        status = result
    # A notional order's share count is the broker's to know: its fill events alone say when it is done.
    if order.notional is None and status is S.PARTIALLY_FILLED and filled == order.qty:
        status = S.FILLED
    if order.notional is None and status is S.FILLED and filled < order.qty:
        # A "fill" whose cumulative quantity falls short is a partial fill reported late.
        status = order.status if order.status.is_terminal else S.PARTIALLY_FILLED
    changes: dict[str, object] = {"status": status, "filled_qty": filled}
    if event.broker_order_id and not order.broker_order_id:
        changes["broker_order_id"] = event.broker_order_id
    if event.reason and status is not order.status:
        changes["reason"] = event.reason
    changes["updated_ns"] = max(order.updated_ns, event.local_ts_ns)
    if status is order.status and filled == order.filled_qty and changes.get("broker_order_id") is None:
        return order
    return order.model_copy(update=changes)
