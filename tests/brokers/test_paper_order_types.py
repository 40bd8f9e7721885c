"""Stop and stop-limit orders in the paper exchange, under both fill rules, and the next_bar rule's
day orders: a stop waits for its price, a triggered stop survives a restart, nothing fills on a bar
that was already known when the order arrived."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from autoquant.clocks import FakeClock
from autoquant.domain.bars import Bar
from autoquant.domain.broker import OrderRequest
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce, to_ns
from tests.brokers.paper_rig import DAY0, ExchangeFactory, daily_bar

D = Decimal


def request(coid: str, side: str, order_type: OrderType, **prices: str) -> OrderRequest:
    return OrderRequest(
        client_order_id=coid,
        symbol="AAPL",
        side=Side(side),
        qty=D(5),
        order_type=order_type,
        time_in_force=TimeInForce.DAY,
        **{name: D(value) for name, value in prices.items()},
    )


def at_close(clock: FakeClock, bar: Bar) -> Bar:
    clock.set(bar.close_time)
    return bar


def test_a_stop_loss_waits_for_its_price_then_sells_at_market(
    make: ExchangeFactory, clock: FakeClock
) -> None:
    """last_price rule: a sell stop at 95 does nothing at 97, triggers at 94 and fills there."""
    exchange = make()
    exchange.set_price("AAPL", D(100))
    exchange.submit(request("buy", "buy", OrderType.MARKET))
    clock.advance(1)
    exchange.process()
    exchange.submit(request("stop", "sell", OrderType.STOP, stop_price="95"))
    clock.advance(1)
    assert exchange.set_price("AAPL", D(97)) == []
    (filled,) = exchange.set_price("AAPL", D(94))
    assert (filled.kind, filled.order.filled_avg_price) == (OrderEventKind.FILL, D(94))


def test_a_triggered_stop_limit_keeps_its_trigger_across_a_restart(
    make: ExchangeFactory, clock: FakeClock
) -> None:
    """A buy stop-limit (stop 105, limit 104) triggers at 106 but cannot fill there; after a restart it
    is still a live limit and fills when the price comes back under it (at 103, the better price)."""
    exchange = make()
    exchange.set_price("AAPL", D(100))
    exchange.submit(request("sl", "buy", OrderType.STOP_LIMIT, stop_price="105", limit_price="104"))
    clock.advance(1)
    assert exchange.set_price("AAPL", D(106)) == []
    exchange.close()
    reopened = make()
    (filled,) = reopened.set_price("AAPL", D(103))
    assert (filled.kind, filled.order.filled_avg_price) == (OrderEventKind.FILL, D(103))


def test_next_bar_market_order_fills_at_the_next_open_not_the_known_close(
    make: ExchangeFactory, clock: FakeClock
) -> None:
    """next_bar rule: an order sent after a bar closed fills at the next bar's open, never at the close."""
    exchange = make(fill_rule="next_bar")
    exchange.on_bar(at_close(clock, daily_bar(0, "100", "101", "99", "100.5")))
    exchange.submit(request("m", "buy", OrderType.MARKET))
    assert exchange.process() == [] and exchange.next_due_ns() is None
    (filled,) = exchange.on_bar(at_close(clock, daily_bar(1, "102", "103", "101", "102.5")))
    assert filled.order.filled_avg_price == D(102)
    assert filled.order.updated_ns == to_ns(DAY0 + timedelta(days=2))


def test_next_bar_limit_buy_gaps_through_and_day_orders_live_one_session(
    make: ExchangeFactory, clock: FakeClock
) -> None:
    """A limit buy at 98 fills at a 96 open (gap through); another one that is never reached expires
    with the first session it could trade in, not at the midnight after it was sent."""
    exchange = make(fill_rule="next_bar")
    exchange.on_bar(at_close(clock, daily_bar(0, "100", "101", "99", "100")))
    exchange.submit(request("gap", "buy", OrderType.LIMIT, limit_price="98"))
    exchange.submit(request("far", "buy", OrderType.LIMIT, limit_price="50"))
    updates = exchange.on_bar(at_close(clock, daily_bar(1, "96", "97", "95", "96")))
    assert [(u.order.client_order_id, u.order.filled_avg_price) for u in updates] == [("gap", D(96))]
    far = exchange.get_by_client_order_id("far")
    assert far is not None and far.status is OrderStatus.ACCEPTED
    (expired,) = exchange.on_bar(at_close(clock, daily_bar(2, "90", "91", "89", "90")))
    assert (expired.order.client_order_id, expired.kind) == ("far", OrderEventKind.EXPIRED)


def test_next_bar_prices_survive_a_restart(make: ExchangeFactory, clock: FakeClock) -> None:
    """next_bar rule: a bar's close is written with the next order change or at close, not per bar; a
    reopened exchange knows the last close either way."""
    exchange = make(fill_rule="next_bar")
    exchange.on_bar(at_close(clock, daily_bar(0, "100", "101", "99", "100.5")))
    exchange.on_bar(at_close(clock, daily_bar(1, "102", "103", "101", "102.5")))
    exchange.close()
    assert make(fill_rule="next_bar").last_price("AAPL") == D("102.5")
