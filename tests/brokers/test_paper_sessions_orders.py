"""opg and cls orders and ``[paper] market_hours``, on a fake clock against the NYSE calendar:
Alpaca's closed windows refuse auction orders, the rest wait for their auction and trade there (or
are canceled), under both fill rules; with market hours, orders wait for their session.
Monday 2026-03-02 is a trading day in EST: the open is 14:30 UTC, the close 21:00 UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from autoquant.clocks import FakeClock
from autoquant.domain.bars import Bar
from autoquant.domain.broker import OrderRequest
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce, to_ns
from autoquant.errors import BrokerRejected
from tests.brokers.paper_rig import ExchangeFactory

D = Decimal
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
OPEN = MONDAY.replace(hour=14, minute=30)
CLOSE = MONDAY.replace(hour=21)


def auction(coid: str, tif: TimeInForce, limit: str | None = None) -> OrderRequest:
    return OrderRequest(
        client_order_id=coid,
        symbol="AAPL",
        side=Side.BUY,
        qty=D(3),
        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
        limit_price=D(limit) if limit else None,
        time_in_force=tif,
    )


@pytest.mark.parametrize(
    ("tif", "sent_at", "refused"),
    [
        (TimeInForce.OPG, MONDAY.replace(hour=14, minute=27), False),  # 9:27 ET
        (TimeInForce.OPG, MONDAY.replace(hour=14, minute=29), True),  # 9:29 ET
        (TimeInForce.OPG, MONDAY.replace(hour=23, minute=59), True),  # 18:59 ET
        (TimeInForce.OPG, MONDAY + timedelta(days=1, minutes=1), False),  # 19:01 ET
        (TimeInForce.CLS, MONDAY.replace(hour=20, minute=49), False),  # 15:49 ET
        (TimeInForce.CLS, MONDAY.replace(hour=20, minute=51), True),  # 15:51 ET
        (TimeInForce.CLS, MONDAY + timedelta(days=1, minutes=1), False),  # 19:01 ET
        (TimeInForce.OPG, datetime(2026, 3, 1, 16, tzinfo=UTC), False),  # a Sunday
    ],
)
def test_auction_orders_are_refused_in_alpacas_closed_window(
    make: ExchangeFactory, clock: FakeClock, tif: TimeInForce, sent_at: datetime, refused: bool
) -> None:
    """opg is refused from 9:28 to 19:00 New York time on a trading day, cls from 15:50 to 19:00;
    outside those windows (and on closed days) both are accepted."""
    exchange = make()
    clock.set(sent_at)
    if refused:
        with pytest.raises(BrokerRejected) as error:
            exchange.submit(auction("a", tif))
        assert (error.value.status, error.value.code) == (422, 42210000)
        assert exchange.get_by_client_order_id("a") is None
    else:
        assert exchange.submit(auction("a", tif)).status is OrderStatus.ACCEPTED


def test_opg_market_order_waits_for_the_open_and_fills_at_the_first_price(
    make: ExchangeFactory, clock: FakeClock
) -> None:
    """An opg buy sent at 8:00 ET is due at the open (next_due_ns), ignores the pre-open prices and fills
    at the price the open brings."""
    exchange = make()
    clock.set(MONDAY.replace(hour=13))
    exchange.set_price("AAPL", D(100))
    exchange.submit(auction("moo", TimeInForce.OPG))
    assert exchange.next_due_ns() == to_ns(OPEN)
    clock.set(MONDAY.replace(hour=14))
    assert exchange.set_price("AAPL", D(99)) == []
    clock.set(OPEN)
    (filled,) = exchange.set_price("AAPL", D(101))
    assert (filled.kind, filled.order.filled_avg_price, filled.order.filled_qty) == (
        OrderEventKind.FILL,
        D(101),
        D(3),
    )


def test_an_unmarketable_limit_on_open_is_canceled_at_the_open(
    make: ExchangeFactory, clock: FakeClock
) -> None:
    """A limit-on-open buy at 99 is canceled at an open of 101: it meets only the opening auction."""
    exchange = make()
    clock.set(MONDAY.replace(hour=13))
    exchange.submit(auction("loo", TimeInForce.OPG, limit="99"))
    clock.set(OPEN)
    (canceled,) = exchange.set_price("AAPL", D(101))
    assert (canceled.kind, canceled.order.filled_qty) == (OrderEventKind.CANCELED, D(0))


def test_cls_market_order_fills_at_the_close_not_before(make: ExchangeFactory, clock: FakeClock) -> None:
    """A cls buy sent at noon ET trades nothing during the session and fills at the close's price."""
    exchange = make()
    clock.set(MONDAY.replace(hour=17))
    exchange.set_price("AAPL", D(100))
    exchange.submit(auction("moc", TimeInForce.CLS))
    clock.set(MONDAY.replace(hour=20))
    assert exchange.set_price("AAPL", D(102)) == []
    clock.set(CLOSE)
    (filled,) = exchange.set_price("AAPL", D(103))
    assert filled.order.filled_avg_price == D(103)


def minute_bar(start: datetime, o: str, c: str) -> Bar:
    return Bar(
        symbol="AAPL",
        open_time=start,
        close_time=start + timedelta(minutes=1),
        open=D(o),
        high=max(D(o), D(c)),
        low=min(D(o), D(c)),
        close=D(c),
        volume=D(1),
        source="test",
    )


def test_next_bar_auctions_trade_at_the_sessions_first_open_and_last_close(
    make: ExchangeFactory, clock: FakeClock
) -> None:
    """next_bar rule: opg fills at the open of the session's first bar (9:30), cls at the close of the
    bar that ends at 16:00; the bars before them do not touch either."""
    exchange = make(fill_rule="next_bar")
    clock.set(MONDAY.replace(hour=13))
    exchange.submit(auction("moo", TimeInForce.OPG))
    exchange.submit(auction("moc", TimeInForce.CLS))
    for start, o, c in ((OPEN - timedelta(minutes=1), "99", "99.5"), (OPEN, "100", "100.5")):
        bar = minute_bar(start, o, c)
        clock.set(bar.close_time)
        updates = exchange.on_bar(bar)
    assert [(u.order.client_order_id, u.order.filled_avg_price) for u in updates] == [("moo", D(100))]
    for start, o, c in (
        (CLOSE - timedelta(minutes=2), "104", "104.5"),
        (CLOSE - timedelta(minutes=1), "105", "105.5"),
    ):
        bar = minute_bar(start, o, c)
        clock.set(bar.close_time)
        updates = exchange.on_bar(bar)
    assert [(u.order.client_order_id, u.order.filled_avg_price) for u in updates] == [("moc", D("105.5"))]


def test_market_hours_queue_orders_sent_while_closed_and_expire_day_orders_at_the_close(
    make: ExchangeFactory, clock: FakeClock
) -> None:
    """[paper] market_hours: a market buy sent at 8:00 ET waits for the 9:30 open and fills there; a
    day limit that never trades expires at the 16:00 close (not at midnight UTC); crypto is 24/7."""
    exchange = make(market_hours=True)
    clock.set(MONDAY.replace(hour=13))
    exchange.set_price("AAPL", D(100))
    exchange.submit(auction("early", TimeInForce.DAY))
    exchange.submit(auction("far", TimeInForce.DAY, limit="50"))
    assert exchange.process() == []
    assert exchange.next_due_ns() == to_ns(OPEN)
    clock.set(OPEN)
    (filled,) = exchange.process()
    assert (filled.order.client_order_id, filled.kind) == ("early", OrderEventKind.FILL)
    clock.set(CLOSE)
    (expired,) = exchange.process()
    assert (expired.order.client_order_id, expired.kind) == ("far", OrderEventKind.EXPIRED)


def test_market_hours_let_extended_hours_orders_trade_from_four_to_eight(
    make: ExchangeFactory, clock: FakeClock
) -> None:
    """[paper] market_hours: at 17:00 ET a regular gtc limit waits for the next open while an
    extended-hours one trades at once."""
    exchange = make(market_hours=True)
    clock.set(MONDAY + timedelta(hours=22))  # 17:00 ET
    exchange.set_price("AAPL", D(100))
    for coid, extended in (("regular", False), ("extended", True)):
        exchange.submit(
            OrderRequest(
                client_order_id=coid,
                symbol="AAPL",
                side=Side.BUY,
                qty=D(1),
                order_type=OrderType.LIMIT,
                limit_price=D(101),
                time_in_force=TimeInForce.GTC,
                extended_hours=extended,
            )
        )
    (filled,) = exchange.process()
    assert filled.order.client_order_id == "extended"
    assert exchange.next_due_ns() == to_ns(OPEN + timedelta(days=1))
