"""The order state machine: every (state, event) pair, and properties over event sequences."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoquant.domain.errors import IllegalTransition, Overfill
from autoquant.domain.orders import (
    KEEP,
    RESTORE,
    TRANSITIONS,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    apply,
)
from autoquant.domain.values import Side

S, E = OrderStatus, OrderEventKind


def order(status: OrderStatus = S.RESERVED, filled: str = "0", qty: str = "10") -> Order:
    return Order(
        client_order_id="aq-1",
        strategy_id="s1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(qty),
        status=status,
        filled_qty=Decimal(filled),
    )


def event(kind: OrderEventKind, filled: str | None = None, ts: int = 1) -> OrderEvent:
    if filled is None and kind is E.PARTIAL_FILL:
        filled = "4"
    if filled is None and kind is E.FILL:
        filled = "10"
    return OrderEvent(
        client_order_id="aq-1",
        kind=kind,
        filled_qty=None if filled is None else Decimal(filled),
        broker_order_id="b-1",
        local_ts_ns=ts,
    )


# The expected outcome of every pair, written out independently of the table's construction.
EXPECTED: dict[tuple[OrderStatus, OrderEventKind], OrderStatus | None] = {}
_live_targets = {
    E.ACCEPTED: S.ACCEPTED,
    E.PARTIAL_FILL: S.PARTIALLY_FILLED,
    E.FILL: S.FILLED,
    E.CANCEL_REQUESTED: S.PENDING_CANCEL,
    E.CANCELED: S.CANCELED,
    E.EXPIRED: S.EXPIRED,
    E.REJECTED: S.REJECTED,
    E.REPLACED: S.REPLACED,
}
for _status in S:
    for _kind in E:
        EXPECTED[(_status, _kind)] = None
for _status in (S.RESERVED, S.UNKNOWN, S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL):
    for _kind, _target in _live_targets.items():
        EXPECTED[(_status, _kind)] = _target
    EXPECTED[(_status, E.CANCEL_REJECTED)] = _status
    EXPECTED[(_status, E.SUBMIT_UNKNOWN)] = _status
EXPECTED[(S.RESERVED, E.SUBMIT_UNKNOWN)] = S.UNKNOWN
EXPECTED[(S.RESERVED, E.DENIED)] = S.DENIED
EXPECTED[(S.UNKNOWN, E.DENIED)] = S.DENIED  # a re-send refused by the risk gate
EXPECTED[(S.ACCEPTED, E.ACCEPTED)] = S.ACCEPTED
EXPECTED[(S.PARTIALLY_FILLED, E.ACCEPTED)] = S.PARTIALLY_FILLED
EXPECTED[(S.PARTIALLY_FILLED, E.REJECTED)] = S.PARTIALLY_FILLED
EXPECTED[(S.PENDING_CANCEL, E.ACCEPTED)] = S.PENDING_CANCEL
EXPECTED[(S.PENDING_CANCEL, E.PARTIAL_FILL)] = S.PENDING_CANCEL
EXPECTED[(S.PENDING_CANCEL, E.CANCEL_REQUESTED)] = S.PENDING_CANCEL
EXPECTED[(S.PENDING_CANCEL, E.CANCEL_REJECTED)] = S.ACCEPTED  # nothing filled yet
for _status in (S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED, S.REPLACED):
    for _kind in (E.ACCEPTED, E.SUBMIT_UNKNOWN, E.CANCEL_REQUESTED, E.CANCEL_REJECTED):
        EXPECTED[(_status, _kind)] = _status
EXPECTED[(S.FILLED, E.PARTIAL_FILL)] = S.FILLED
EXPECTED[(S.FILLED, E.FILL)] = S.FILLED
EXPECTED[(S.CANCELED, E.CANCELED)] = S.CANCELED
EXPECTED[(S.CANCELED, E.PARTIAL_FILL)] = S.CANCELED
EXPECTED[(S.CANCELED, E.FILL)] = S.FILLED
EXPECTED[(S.EXPIRED, E.EXPIRED)] = S.EXPIRED
EXPECTED[(S.EXPIRED, E.PARTIAL_FILL)] = S.EXPIRED
EXPECTED[(S.EXPIRED, E.FILL)] = S.FILLED
EXPECTED[(S.REJECTED, E.REJECTED)] = S.REJECTED
EXPECTED[(S.REPLACED, E.REPLACED)] = S.REPLACED
EXPECTED[(S.REPLACED, E.PARTIAL_FILL)] = S.REPLACED
EXPECTED[(S.REPLACED, E.FILL)] = S.REPLACED
EXPECTED[(S.DENIED, E.DENIED)] = S.DENIED


def _start(status: OrderStatus) -> Order:
    filled = "4" if status is S.PARTIALLY_FILLED else "10" if status is S.FILLED else "0"
    return order(status, filled)


@pytest.mark.parametrize(("status", "kind"), [(s, k) for s in S for k in E])
def test_every_state_event_pair(status: OrderStatus, kind: OrderEventKind) -> None:
    """Each (state, event) pair either reaches the expected state or raises IllegalTransition."""
    expected = EXPECTED[(status, kind)]
    if expected is None:
        with pytest.raises(IllegalTransition) as raised:
            apply(_start(status), event(kind))
        assert status.value in str(raised.value)
        assert kind.value in str(raised.value)
    else:
        assert apply(_start(status), event(kind)).status is expected


def test_table_has_no_pair_the_expectations_do_not_know() -> None:
    """The table and the written-out expectations agree on which pairs are legal."""
    legal = {pair for pair, target in EXPECTED.items() if target is not None}
    assert set(TRANSITIONS) == legal
    assert KEEP in TRANSITIONS.values()
    assert RESTORE in TRANSITIONS.values()


def test_fill_before_acknowledgement_is_accepted() -> None:
    """A fill that overtakes the acknowledgement fills the order; the late ack changes nothing."""
    filled = apply(order(), event(E.FILL))
    assert filled.status is S.FILLED and filled.filled_qty == 10
    assert apply(filled, event(E.ACCEPTED, ts=2)) == filled


def test_late_partial_fill_after_cancel_is_counted() -> None:
    """A partial fill after the cancel raises the filled quantity and keeps the order canceled."""
    canceled = apply(order(S.ACCEPTED), event(E.CANCELED))
    late = apply(canceled, event(E.PARTIAL_FILL, "3"))
    assert late.status is S.CANCELED and late.filled_qty == 3


def test_rejected_cancel_restores_partially_filled() -> None:
    """A rejected cancel returns a partly filled order to PARTIALLY_FILLED."""
    pending = apply(order(S.PARTIALLY_FILLED, "4"), event(E.CANCEL_REQUESTED))
    assert apply(pending, event(E.CANCEL_REJECTED)).status is S.PARTIALLY_FILLED


def test_partial_fill_reaching_full_quantity_is_filled() -> None:
    """Cumulative fills equal to the quantity make the order FILLED whatever the event was called."""
    assert apply(order(S.ACCEPTED), event(E.PARTIAL_FILL, "10")).status is S.FILLED


def test_stale_fill_does_not_lower_filled_quantity() -> None:
    """An older cumulative fill arriving after a newer one changes nothing."""
    later = apply(order(S.ACCEPTED), event(E.PARTIAL_FILL, "6"))
    assert apply(later, event(E.PARTIAL_FILL, "4")) == later


def test_overfill_is_refused() -> None:
    """A cumulative fill above the order quantity raises Overfill naming the numbers."""
    with pytest.raises(Overfill, match="exceeds order quantity 10"):
        apply(order(S.ACCEPTED), event(E.FILL, "11"))


def test_fill_events_need_quantity() -> None:
    """A fill event without a cumulative quantity is refused at construction."""
    with pytest.raises(ValueError, match="filled_qty"):
        OrderEvent(client_order_id="aq-1", kind=E.FILL, local_ts_ns=1)


kinds = st.sampled_from(list(E))
fills = st.sampled_from(["0", "2", "5", "10"])
events = st.builds(
    lambda kind, filled, ts: event(kind, filled if kind in (E.PARTIAL_FILL, E.FILL) else None, ts),
    kinds,
    fills,
    st.integers(1, 1000),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=25))
def test_event_sequences_stay_legal_and_idempotent(sequence: list[OrderEvent]) -> None:
    """Any event sequence keeps the order in a known state with a filled quantity that never drops,
    and applying an accepted event a second time changes nothing."""
    current = order()
    for item in sequence:
        try:
            after = apply(current, item)
        except IllegalTransition:
            continue
        assert after.status in set(S)
        assert after.filled_qty >= current.filled_qty
        assert after.filled_qty <= after.qty
        assert apply(after, item) == after
        if current.status.is_terminal:
            assert after.status.is_terminal
        current = after
