"""The order state table under a replace, as a property: whatever order the broker's events for the old
order and its replacement arrive in, duplicated or not, before or after our own acknowledgement, the old
order ends REPLACED with the fills it had, and the replacement ends with exactly its cumulative fill."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from autoquant.domain.adoption import replacement_reservation
from autoquant.domain.broker import BrokerOrderState
from autoquant.domain.orders import Order, OrderEvent, OrderEventKind, OrderStatus, apply
from autoquant.domain.values import OrderType, Side, TimeInForce

E = OrderEventKind


def event(coid: str, kind: OrderEventKind, filled: int | None = None) -> OrderEvent:
    return OrderEvent(
        client_order_id=coid,
        kind=kind,
        broker_order_id=f"b-{coid}",
        filled_qty=None if filled is None else Decimal(filled),
        local_ts_ns=1,
    )


@st.composite
def replace_histories(draw: st.DrawFn) -> tuple[int, int, list[OrderEvent]]:
    """(old's fill before the replace, new's final fill, every event in some arrival order)."""
    old_filled = draw(st.integers(0, 3))
    new_qty = 10
    cuts = sorted(draw(st.lists(st.integers(1, new_qty - 1), max_size=3, unique=True)))
    old = [event("old", E.ACCEPTED), event("old", E.REPLACED, old_filled)]
    if old_filled:
        old.append(event("old", E.PARTIAL_FILL, old_filled))
    if draw(st.booleans()):
        old.append(event("old", E.CANCEL_REQUESTED))  # an operator's cancel that lost the race
    new = [event("new", E.ACCEPTED)]
    if draw(st.booleans()):
        new.append(event("new", E.SUBMIT_UNKNOWN))  # the replace's answer was lost
    new += [event("new", E.PARTIAL_FILL, cut) for cut in cuts]
    new.append(event("new", E.FILL, new_qty))
    events = old + new
    events += draw(st.lists(st.sampled_from(events), max_size=4))  # duplicates
    return old_filled, new_qty, draw(st.permutations(events))


def reserved(coid: str, replaces: str | None = None) -> Order:
    return Order(
        client_order_id=coid,
        decision_id="d-1",
        strategy_id="s1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(10),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(90),
        replaces=replaces,
    )


@settings(max_examples=300, deadline=None)
@given(replace_histories())
def test_a_replace_converges_whatever_the_arrival_order(history: tuple[int, int, list[OrderEvent]]) -> None:
    """Any arrival order: old REPLACED with its own fill, new FILLED with exactly its own quantity."""
    old_filled, new_qty, events = history
    orders = {"old": reserved("old"), "new": reserved("new", replaces="old")}
    for incoming in events:
        orders[incoming.client_order_id] = apply(orders[incoming.client_order_id], incoming)
    old, new = orders["old"], orders["new"]
    assert old.status is OrderStatus.REPLACED and old.filled_qty == old_filled
    assert new.status is OrderStatus.FILLED and new.filled_qty == new_qty
    assert new.replaces == "old" and new.decision_id == old.decision_id


@given(st.sampled_from(list(OrderType)), st.integers(1, 50))
def test_a_replacement_adopted_from_the_broker_rides_the_old_decision(
    order_type: OrderType, qty: int
) -> None:
    """An order the broker made by replacing ours is reserved on our order's decision and strategy."""
    limit = Decimal(91) if order_type.needs_limit_price else None
    stop = Decimal(92) if order_type.needs_stop_price else None
    trailing = order_type is OrderType.TRAILING_STOP
    state = BrokerOrderState(
        broker_order_id="b-new",
        client_order_id="web-1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(qty),
        order_type=order_type,
        time_in_force=TimeInForce.GTC,
        limit_price=limit,
        # A trailing stop's stop moves with its high-water mark: adopted by its trail, not its stop.
        stop_price=Decimal(93) if trailing else stop,
        trail_price=Decimal(2) if trailing else None,
        status=OrderStatus.ACCEPTED,
        created_ns=5,
        updated_ns=5,
        replaces="b-old",
    )
    adopted = replacement_reservation(state, reserved("old"))
    assert (adopted.decision_id, adopted.strategy_id, adopted.replaces) == ("d-1", "s1", "old")
    assert (adopted.order_type, adopted.qty, adopted.limit_price, adopted.stop_price) == (
        order_type,
        Decimal(qty),
        limit,
        stop,
    )
    assert adopted.trail_price == (Decimal(2) if trailing else None)
    assert adopted.status is OrderStatus.RESERVED
