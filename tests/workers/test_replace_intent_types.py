"""Operator replaces of the further order types: a trailing stop's replacement keeps its trail (in the
ledger and at the exchange) and the old one ends REPLACED; a notional order is refused a replace, as
Alpaca refuses it, with a one-line reason, and nothing is reserved."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from autoquant.domain.ids import replacement_client_order_id
from autoquant.domain.orders import Order, OrderEvent, OrderEventKind, OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce
from autoquant.workers.broker_requests import BrokerRequests
from tests.workers.test_execution import Rig, make
from tests.workers.test_replace_and_flatten import request_replace, send_fresh

__all__ = ["make"]

MakeRig = Callable[..., Coroutine[Any, Any, Rig]]
D = Decimal


async def place(rig: Rig, **terms: Any) -> Order:
    order = Order.model_validate(
        {
            "client_order_id": "aq-1",
            "strategy_id": "s1",
            "symbol": "AAPL",
            "side": Side.BUY,
            "qty": D(10),
            "created_ns": rig.clock.now_ns(),
        }
        | terms
    )
    assert await rig.ledger.reserve(order)
    rig.worker.submit_soon("aq-1")
    placed = await rig.worker.process(order)
    assert placed is not None and placed.status is OrderStatus.ACCEPTED, placed
    await rig.deliver()
    return placed


async def test_a_replaced_trailing_stop_keeps_its_trail(make: MakeRig) -> None:
    """A trailing buy stop replaced to 6 shares: the replacement carries the $2 trail to the exchange."""
    rig = await make()
    await place(rig, order_type=OrderType.TRAILING_STOP, trail_price=D(2), time_in_force=TimeInForce.GTC)
    new_id = await request_replace(rig, "aq-1", qty="6")
    assert await BrokerRequests(rig.ledger, rig.broker, rig.clock, rig.worker).carry_out() == 1
    await send_fresh(rig)
    await rig.deliver()
    old, new = await rig.ledger.get_order("aq-1"), await rig.ledger.get_order(new_id)
    assert old is not None and old.status is OrderStatus.REPLACED
    assert new is not None and (new.status, new.qty, new.trail_price) == (OrderStatus.ACCEPTED, D(6), D(2))
    at_venue = await rig.broker.get_by_client_order_id(new_id)
    assert at_venue is not None and (at_venue.order_type, at_venue.trail_price) == (
        OrderType.TRAILING_STOP,
        D(2),
    )


async def test_a_trailing_stops_new_trail_reaches_the_exchange(make: MakeRig) -> None:
    """``replace --trail 3`` of a $2 trailing stop: the replacement trails by $3, in the ledger and at the
    exchange; a trail_percent order's trail is read as percent."""
    rig = await make()
    await place(rig, order_type=OrderType.TRAILING_STOP, trail_price=D(2), time_in_force=TimeInForce.GTC)
    new_id = await request_replace(rig, "aq-1", trail="3")
    assert await BrokerRequests(rig.ledger, rig.broker, rig.clock, rig.worker).carry_out() == 1
    await send_fresh(rig)
    await rig.deliver()
    new = await rig.ledger.get_order(new_id)
    assert new is not None and (new.status, new.trail_price, new.trail_percent) == (
        OrderStatus.ACCEPTED,
        D(3),
        None,
    )
    at_venue = await rig.broker.get_by_client_order_id(new_id)
    assert at_venue is not None and at_venue.trail_price == D(3)


async def test_a_trail_on_a_limit_order_is_refused_and_reserves_nothing(make: MakeRig) -> None:
    """A trail given for a limit order (a request written by hand): refused in one line, nothing reserved."""
    rig = await make()
    await place(rig, order_type=OrderType.LIMIT, limit_price=D(90))
    seq = await rig.ledger.request_at_broker("replace", "aq-1", {"trail": "3"}, "wider", "op", 2)
    assert await BrokerRequests(rig.ledger, rig.broker, rig.clock, rig.worker).carry_out() == 1
    assert await rig.ledger.get_order(replacement_client_order_id("aq-1", seq)) is None
    assert [o.client_order_id for o in await rig.ledger.open_orders()] == ["aq-1"]
    found = await rig.ledger.broker_request(seq)
    assert found is not None and found[1] is not None
    ok, detail = found[1]
    assert not ok and "only a trailing stop has a trail" in detail


async def test_a_notional_order_is_refused_a_replace(make: MakeRig) -> None:
    """An acknowledged notional order's replace is refused, named, and reserves nothing."""
    rig = await make()
    order = Order(
        client_order_id="aq-n", strategy_id="s1", symbol="AAPL", side=Side.BUY, qty=D(0), notional=D(500)
    )
    assert await rig.ledger.reserve(order)
    await rig.ledger.apply_event(
        OrderEvent(client_order_id="aq-n", kind=OrderEventKind.ACCEPTED, broker_order_id="b-n", local_ts_ns=1)
    )
    seq = await rig.ledger.request_at_broker("replace", "aq-n", {"qty": "3"}, "smaller", "op", 2)
    assert await BrokerRequests(rig.ledger, rig.broker, rig.clock, rig.worker).carry_out() == 1
    assert [o.client_order_id for o in await rig.ledger.orders_for_decision("aq-n")] == []
    found = await rig.ledger.broker_request(seq)
    assert found is not None and found[1] is not None
    ok, detail = found[1]
    assert not ok and "notional" in detail and "\n" not in detail
    assert len(await rig.ledger.open_orders()) == 1
