"""Replaces and flattening against the real in-process paper exchange and the real ledger: the replaced
order ends REPLACED, its replacement rides the same decision and its fills count once; a replace reaches
the broker at most once through timeouts and restarts; a replace or a flatten done at the broker is
adopted, never an orphan."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from autoquant.brokers.paper import PaperBroker
from autoquant.domain.broker import BrokerOrderState, OrderRequest, OrderUpdate
from autoquant.domain.decisions import Action, Decision, OrderIntent
from autoquant.domain.ids import replacement_client_order_id
from autoquant.domain.orders import Order, OrderEvent, OrderEventKind, OrderStatus
from autoquant.domain.values import OrderType, Side, from_ns
from autoquant.errors import BrokerAmbiguous
from autoquant.workers.broker_requests import BrokerRequests
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.reconciliation import Reconciler
from tests.workers.test_execution import Rig, make

__all__ = ["make"]

MakeRig = Callable[..., Coroutine[Any, Any, Rig]]


class DropAfterReplace(PaperBroker):
    """A broker whose replace reaches the exchange but whose answer is lost (a fake, not a mock)."""

    async def replace(self, broker_order_id: str, request: OrderRequest) -> BrokerOrderState:
        await super().replace(broker_order_id, request)
        raise BrokerAmbiguous("connection dropped after the replace was sent")


async def place_limit(rig: Rig, coid: str = "aq-1", limit: str = "90", qty: str = "10") -> Order:
    """A decided, reserved and acknowledged limit buy below the market (it rests)."""
    intent = OrderIntent(
        strategy_id="s1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(qty),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(limit),
        reason="test",
        decision_id="d-1",
        data_time=from_ns(1_000_000_000),
    )
    decision = Decision(
        decision_id="d-1",
        strategy_id="s1",
        symbol="AAPL",
        action=Action.BUY,
        reason="test",
        data_time=from_ns(1_000_000_000),
        intent=intent,
    )
    order = Order(
        client_order_id=coid,
        decision_id="d-1",
        strategy_id="s1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(qty),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(limit),
        created_ns=rig.clock.now_ns(),
    )
    await rig.ledger.record_decision_outcome(decision, rig.clock.now_ns(), None, order)
    rig.worker.submit_soon(coid)
    placed = await rig.worker.process(order)
    assert placed is not None and placed.status is OrderStatus.ACCEPTED
    await rig.deliver()
    return placed


async def request_replace(rig: Rig, target: str, **params: str) -> str:
    seq = await rig.ledger.request_at_broker("replace", target, params, "tighter", "op", rig.clock.now_ns())
    return replacement_client_order_id(target, seq)


async def send_fresh(rig: Rig) -> None:
    """What the outbox does with the reservations handed to it: send them."""
    while not rig.worker._fresh.empty():  # our own worker's queue, read as the outbox reads it
        coid = rig.worker._fresh.get_nowait()
        order = await rig.ledger.get_order(coid)
        assert order is not None
        await rig.worker.process(order)


async def incidents(rig: Rig) -> list[str]:
    return [i.kind for i in await rig.ledger.incidents(open_only=True)]


async def test_replace_links_the_new_order_to_the_decision_and_counts_its_fills_once(make: MakeRig) -> None:
    """A replace: old REPLACED, new on the same decision with the new terms; its fills count once."""
    rig = await make()
    await place_limit(rig)
    new_id = await request_replace(rig, "aq-1", qty="6", limit_price="95")
    requests = BrokerRequests(rig.ledger, rig.broker, rig.clock, rig.worker)
    assert await requests.carry_out() == 1
    reserved = await rig.ledger.get_order(new_id)
    assert reserved is not None and reserved.status is OrderStatus.RESERVED
    assert (reserved.replaces, reserved.decision_id, reserved.qty, reserved.limit_price) == (
        "aq-1",
        "d-1",
        Decimal(6),
        Decimal(95),
    )
    await send_fresh(rig)
    await rig.deliver()
    old, new = await rig.ledger.get_order("aq-1"), await rig.ledger.get_order(new_id)
    assert old is not None and old.status is OrderStatus.REPLACED
    assert new is not None and new.status is OrderStatus.ACCEPTED
    assert await requests.carry_out() == 0  # the request is done: never carried out twice
    rig.exchange.set_price("AAPL", Decimal("94"))
    await rig.settle()
    await rig.settle()
    new = await rig.ledger.get_order(new_id)
    assert new is not None and new.status is OrderStatus.FILLED and new.filled_qty == 6
    fills = await rig.ledger.fills_after(0, 0)
    assert [(f.client_order_id, f.qty) for f in fills] == [(new_id, Decimal(6))]
    assert (await rig.ledger.account_positions())["AAPL"] == 6
    assert [o.client_order_id for o in await rig.ledger.orders_for_decision("d-1")] == ["aq-1", new_id]
    assert await incidents(rig) == []


async def test_ambiguous_replace_is_resolved_by_lookup_not_sent_again(make: MakeRig) -> None:
    """A replace whose answer is lost is UNKNOWN, then adopted by lookup: one replacement at the broker."""
    rig = await make(DropAfterReplace)
    await place_limit(rig)
    new_id = await request_replace(rig, "aq-1", limit_price="92")
    await BrokerRequests(rig.ledger, rig.broker, rig.clock, rig.worker).carry_out()
    await send_fresh(rig)
    unknown = await rig.ledger.get_order(new_id)
    assert unknown is not None and unknown.status is OrderStatus.UNKNOWN
    rig.clock.advance(5)
    assert await rig.worker.resolve_pending() == []
    new = await rig.ledger.get_order(new_id)
    assert new is not None and new.status is OrderStatus.ACCEPTED
    await rig.deliver()
    old = await rig.ledger.get_order("aq-1")
    assert old is not None and old.status is OrderStatus.REPLACED
    at_broker = rig.exchange.list_orders(status="all")
    assert sorted(o.client_order_id for o in at_broker) == sorted(["aq-1", new_id])


async def test_replace_reserved_before_a_crash_is_sent_once_after_restart(make: MakeRig) -> None:
    """A replacement reserved but never sent (the process died) is looked up, then sent once."""
    rig = await make()
    await place_limit(rig)
    new_id = await request_replace(rig, "aq-1", qty="4")
    await BrokerRequests(rig.ledger, rig.broker, rig.clock, rig.worker).carry_out()
    restarted = ExecutionWorker(rig.ledger, rig.broker, rig.clock, resubmit_grace_s=2.0)
    assert [o.client_order_id for o in await restarted.resolve_pending()] == [new_id]  # in its grace
    rig.clock.advance(5)
    assert await restarted.resolve_pending() == []
    assert await restarted.resolve_pending() == []
    new = await rig.ledger.get_order(new_id)
    assert new is not None and new.status is OrderStatus.ACCEPTED and new.qty == 4
    assert len(rig.exchange.list_orders(status="all")) == 2


async def test_replace_of_an_order_that_filled_meanwhile_is_rejected(make: MakeRig) -> None:
    """The old order filled before the replace arrived: the replacement is REJECTED, the fill stands."""
    rig = await make()
    await place_limit(rig)
    new_id = await request_replace(rig, "aq-1", limit_price="85")
    await BrokerRequests(rig.ledger, rig.broker, rig.clock, rig.worker).carry_out()
    rig.exchange.set_price("AAPL", Decimal("89"))
    rig.clock.advance(1)
    rig.exchange.process()  # filled at the venue; the ledger has not heard yet
    await send_fresh(rig)
    new = await rig.ledger.get_order(new_id)
    assert new is not None and new.status is OrderStatus.REJECTED
    await rig.deliver()
    old = await rig.ledger.get_order("aq-1")
    assert old is not None and old.status is OrderStatus.FILLED and old.filled_qty == 10


async def test_a_replace_done_at_the_broker_is_adopted_from_the_stream(make: MakeRig) -> None:
    """Replaced outside the daemon: the stream's new order is adopted on the old one's decision."""
    rig = await make()
    placed = await place_limit(rig)
    assert placed.broker_order_id is not None
    old_state = rig.exchange.get_order(placed.broker_order_id)
    assert old_state is not None
    terms = OrderRequest(
        client_order_id="web-ui-1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(3),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(91),
    )
    rig.exchange.replace(placed.broker_order_id, terms)
    await rig.deliver()
    new = await rig.ledger.get_order("web-ui-1")
    assert new is not None and new.status is OrderStatus.ACCEPTED
    assert (new.replaces, new.decision_id, new.strategy_id) == ("aq-1", "d-1", "s1")
    old = await rig.ledger.get_order("aq-1")
    assert old is not None and old.status is OrderStatus.REPLACED
    assert await incidents(rig) == []


async def test_a_replace_done_at_the_broker_is_adopted_by_reconciliation(make: MakeRig) -> None:
    """Replaced outside the daemon while the stream was down: reconciliation adopts it, clean."""
    rig = await make()
    placed = await place_limit(rig)
    assert placed.broker_order_id is not None
    rig.exchange.replace(
        placed.broker_order_id,
        OrderRequest(
            client_order_id="web-ui-2",
            symbol="AAPL",
            side=Side.BUY,
            qty=Decimal(10),
            order_type=OrderType.LIMIT,
            limit_price=Decimal(99),
        ),
    )
    rig.exchange.set_price("AAPL", Decimal("98"))
    rig.clock.advance(1)
    rig.exchange.process()  # and it filled, unheard
    reconciler = Reconciler(rig.ledger, rig.broker, rig.clock, {"AAPL": {"s1"}})
    outcome = await reconciler.run("test")
    assert outcome.clean, outcome.summary
    assert outcome.summary["adopted_from_broker"] == ["web-ui-2"]
    new = await rig.ledger.get_order("web-ui-2")
    assert new is not None and new.status is OrderStatus.FILLED and new.decision_id == "d-1"
    old = await rig.ledger.get_order("aq-1")
    assert old is not None and old.status is OrderStatus.REPLACED
    assert (await rig.ledger.account_positions())["AAPL"] == 10


async def buy_and_fill(rig: Rig, coid: str, qty: str) -> None:
    order = Order(
        client_order_id=coid,
        strategy_id="s1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(qty),
        created_ns=rig.clock.now_ns(),
    )
    assert await rig.ledger.reserve(order)
    rig.worker.submit_soon(coid)
    await rig.worker.process(order)
    await rig.settle()


async def test_flatten_cancels_open_orders_closes_positions_and_records_every_fill(make: MakeRig) -> None:
    """A flatten: open orders canceled, positions closed by the broker's orders, all in the ledger."""
    rig = await make()
    await buy_and_fill(rig, "aq-b1", "7")
    await place_limit(rig, coid="aq-rest")
    await rig.ledger.request_at_broker("flatten", "*", {}, "end of day", "op", rig.clock.now_ns())
    requests = BrokerRequests(rig.ledger, rig.broker, rig.clock, rig.worker)
    assert await requests.carry_out() == 1
    assert await requests.carry_out() == 0
    await rig.settle()
    await rig.settle()
    resting = await rig.ledger.get_order("aq-rest")
    assert resting is not None and resting.status is OrderStatus.CANCELED
    assert (await rig.ledger.account_positions()).get("AAPL", Decimal(0)) == 0
    assert rig.exchange.positions() == []
    assert await rig.ledger.open_orders() == []
    fills = await rig.ledger.fills_after(0, 0)
    assert sum(f.signed_qty for f in fills) == 0 and len(fills) == 2
    outcome = await Reconciler(rig.ledger, rig.broker, rig.clock, {"AAPL": {"s1"}}).run("test")
    assert outcome.clean, outcome.summary
    assert await incidents(rig) == []


async def test_a_closing_order_streamed_before_the_flatten_recorded_it_is_adopted(make: MakeRig) -> None:
    """The broker's closing order reaches the stream first: adopted (not an orphan) while flattening."""
    rig = await make()
    await buy_and_fill(rig, "aq-b1", "5")
    await rig.ledger.request_at_broker("flatten", "*", {}, "risk", "op", rig.clock.now_ns())
    result = await rig.broker.close_all_positions(cancel_orders=True)  # the flatten's call, not yet recorded
    await rig.settle()
    closing = await rig.ledger.get_order(result.orders[0].client_order_id)
    assert closing is not None and closing.status is OrderStatus.FILLED and closing.strategy_id == "s1"
    assert (await rig.ledger.account_positions())["AAPL"] == 0
    assert await incidents(rig) == []


async def test_a_stranger_order_outside_any_flatten_is_still_an_incident(make: MakeRig) -> None:
    """Without a flatten under way, a market order the ledger never reserved stays an unknown order."""
    rig = await make()
    rig.exchange.submit(
        OrderRequest(client_order_id="someone-else", symbol="AAPL", side=Side.BUY, qty=Decimal(1))
    )
    await rig.deliver()
    assert await rig.ledger.get_order("someone-else") is None
    assert await incidents(rig) == ["unknown_order"]


async def test_a_replaced_event_that_carries_the_new_order_ends_the_old_one(make: MakeRig) -> None:
    """A ``replaced`` event carrying the replacement: the old order ends REPLACED, the new one is ACCEPTED."""
    rig = await make()
    placed = await place_limit(rig)
    assert placed.broker_order_id is not None
    new_state = rig.exchange.replace(
        placed.broker_order_id,
        OrderRequest(
            client_order_id="web-ui-3",
            symbol="AAPL",
            side=Side.BUY,
            qty=Decimal(4),
            order_type=OrderType.LIMIT,
            limit_price=Decimal(92),
        ),
    )
    while not rig.updates.empty():
        rig.updates.get_nowait()  # the venue's own wording of the replace is not the one under test
    carried = new_state.model_copy(update={"replaces": placed.broker_order_id})
    await rig.stream.handle_update(
        OrderUpdate(
            kind=OrderEventKind.REPLACED, order=carried, local_ts_ns=rig.clock.now_ns(), raw_event="replaced"
        )
    )
    old, new = await rig.ledger.get_order("aq-1"), await rig.ledger.get_order("web-ui-3")
    assert old is not None and old.status is OrderStatus.REPLACED
    assert new is not None and new.status is OrderStatus.ACCEPTED and new.replaces == "aq-1"
    assert await incidents(rig) == []


async def test_a_replace_of_an_order_the_broker_does_not_know_is_rejected(make: MakeRig) -> None:
    """The broker has no order under the old broker id: the replacement is REJECTED, the worker lives on."""
    rig = await make()
    stranger = Order(
        client_order_id="aq-2",
        strategy_id="s1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(1),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(80),
        created_ns=rig.clock.now_ns(),
    )
    assert await rig.ledger.reserve(stranger)
    await rig.ledger.apply_event(
        OrderEvent(
            client_order_id="aq-2", kind=OrderEventKind.ACCEPTED, broker_order_id="nowhere", local_ts_ns=1
        )
    )
    new_id = await request_replace(rig, "aq-2", qty="3")
    await BrokerRequests(rig.ledger, rig.broker, rig.clock, rig.worker).carry_out()
    await send_fresh(rig)
    refused = await rig.ledger.get_order(new_id)
    assert refused is not None and refused.status is OrderStatus.REJECTED
    assert "does not know" in (refused.reason or "")
    old = await rig.ledger.get_order("aq-2")
    assert old is not None and old.status is OrderStatus.ACCEPTED
