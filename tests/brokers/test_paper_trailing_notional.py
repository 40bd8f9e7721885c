"""Trailing stops and notional orders in the paper exchange, on a fake clock: the mark and its stop under
both fill rules and across a restart and a replace; notional orders sized at the fill; Alpaca's rules
on which combinations of type, time in force, asset class and quantity are taken."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from autoquant.brokers.paper import PaperBroker
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.brokers.paper.trailing import trail_stop
from autoquant.clocks import FakeClock
from autoquant.domain.broker import BrokerOrderState, OrderRequest
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce
from autoquant.errors import BrokerRejected
from tests.brokers.paper_rig import ExchangeFactory, daily_bar

D = Decimal
T = TimeInForce


def req(coid: str, side: str = "buy", **terms: Any) -> OrderRequest:
    values: dict[str, Any] = {"symbol": "AAPL", "qty": D(5), "time_in_force": T.GTC} | terms
    return OrderRequest(client_order_id=coid, side=Side(side), **values)


def trailing(coid: str, side: str = "sell", **trail: str) -> OrderRequest:
    return req(coid, side, order_type=OrderType.TRAILING_STOP, **{k: D(v) for k, v in trail.items()})


def holding(exchange: PaperExchange, qty: str = "5", price: str = "100") -> None:
    exchange.set_price("AAPL", D(price))
    exchange.submit(req("own", qty=D(qty)))
    exchange.process()


def mark(exchange: PaperExchange, coid: str) -> tuple[Decimal | None, Decimal | None]:
    state = exchange.get_by_client_order_id(coid)
    assert state is not None
    return state.hwm, state.stop_price


def test_a_trailing_sell_follows_the_high_and_sells_when_the_price_turns(make: ExchangeFactory) -> None:
    """A sell trailing 5 % marks 100 (stop 95), rises with the price to 110 (stop 104.5), keeps its
    mark through a dip to 106, and sells at market at 104."""
    exchange = make()
    holding(exchange)
    exchange.submit(trailing("t", trail_percent="5"))
    assert mark(exchange, "t") == (D(100), D(95))
    assert exchange.set_price("AAPL", D(110)) == []
    assert mark(exchange, "t") == (D(110), D("104.5"))
    assert exchange.set_price("AAPL", D(106)) == []
    assert mark(exchange, "t") == (D(110), D("104.5"))
    (filled,) = exchange.set_price("AAPL", D(104))
    assert (filled.kind, filled.order.filled_avg_price, filled.order.hwm) == (
        OrderEventKind.FILL,
        D(104),
        D(110),
    )


def test_a_trailing_buy_needs_the_cash_for_its_stop_not_the_price(make: ExchangeFactory) -> None:
    """950 shares trailing $10 at 100 would cost 104,500 at the stop (110): refused with 403, though
    they cost 95,000 at the price; 900 (99,000 at the stop) are accepted."""
    exchange = make()
    exchange.set_price("AAPL", D(100))
    with pytest.raises(BrokerRejected) as refused:
        exchange.submit(trailing("big", "buy", trail_price="10").model_copy(update={"qty": D(950)}))
    assert refused.value.status == 403
    ok = exchange.submit(trailing("ok", "buy", trail_price="10").model_copy(update={"qty": D(900)}))
    assert ok.stop_price == D(110)


def test_a_trailing_stop_sent_before_any_price_marks_the_first_one(make: ExchangeFactory) -> None:
    """With no price yet a trailing buy has no mark and no stop; the first price sets both ($2 above)."""
    exchange = make()
    exchange.submit(trailing("t", "buy", trail_price="2"))
    assert mark(exchange, "t") == (None, None)
    assert exchange.set_price("AAPL", D(50)) == []
    assert mark(exchange, "t") == (D(50), D(52))


def test_the_mark_survives_a_restart(make: ExchangeFactory) -> None:
    """A mark raised to 120 is in the state file: after reopening, the stop is still 118 and a fall to
    117 sells."""
    exchange = make()
    holding(exchange)
    exchange.submit(trailing("t", trail_price="2"))
    exchange.set_price("AAPL", D(120))
    exchange.close()
    reopened = make()
    assert mark(reopened, "t") == (D(120), D(118))
    (filled,) = reopened.set_price("AAPL", D(117))
    assert filled.order.filled_avg_price == D(117)


def test_replacing_the_trail_keeps_the_mark(make: ExchangeFactory) -> None:
    """Replacing trail_price 2 by 6 after the mark reached 110 gives a new order marked 110, stop 104."""
    exchange = make()
    holding(exchange)
    old = exchange.submit(trailing("t", trail_price="2"))
    exchange.set_price("AAPL", D(110))
    new = exchange.replace(old.broker_order_id, trailing("t2", trail_price="6"))
    assert (new.hwm, new.stop_price, new.trail_price) == (D(110), D(104), D(6))
    replaced = exchange.get_order(old.broker_order_id)
    assert replaced is not None and replaced.status is OrderStatus.REPLACED


def test_next_bar_trailing_stop_raises_its_mark_in_one_bar_and_triggers_in_the_next(
    make: ExchangeFactory, clock: FakeClock
) -> None:
    """next_bar rule: a sell trailing $5 sent at a close of 108 (stop 103) survives the next bar's low
    of 104, then marks that bar's high (112, stop 107); the bar after reaches 107 and fills there."""
    exchange = make(fill_rule="next_bar")
    clock.set(datetime(2026, 3, 1, tzinfo=UTC))
    exchange.submit(req("own", qty=D(5)))
    bar = daily_bar(0, "100", "110", "99", "108")
    clock.set(bar.close_time)
    exchange.on_bar(bar)
    exchange.submit(trailing("t", trail_price="5"))
    assert mark(exchange, "t") == (D(108), D(103))
    bar = daily_bar(1, "108", "112", "104", "110")
    clock.set(bar.close_time)
    assert exchange.on_bar(bar) == []
    assert mark(exchange, "t") == (D(112), D(107))
    bar = daily_bar(2, "110", "111", "106", "108")
    clock.set(bar.close_time)
    (filled,) = exchange.on_bar(bar)
    assert filled.order.filled_avg_price == D(107)


def test_a_notional_buy_is_sized_at_the_fill_and_reported_without_qty(
    make: ExchangeFactory, clock: FakeClock
) -> None:
    """$50 of AAPL at 150 buys 0.333333333 (rounded down to 9 decimals) in one fill; open, its qty is 0."""
    exchange = make(latency_s=1.0, partial_fill_probability=1.0)
    exchange.set_price("AAPL", D(150))
    accepted = exchange.submit(req("n", qty=None, notional=D(50), time_in_force=T.DAY))
    assert (accepted.qty, accepted.notional) == (D(0), D(50))
    assert exchange.account().buying_power == D(100_000) - D(50)
    clock.advance(1)
    (filled,) = exchange.process()
    assert (filled.kind, filled.order.qty, filled.order.filled_qty) == (
        OrderEventKind.FILL,
        D("0.333333333"),
        D("0.333333333"),
    )


def test_a_notional_sell_is_bounded_by_the_position(make: ExchangeFactory) -> None:
    """A $300 sell of 2 shares at 100 is refused (403); $150 sells 1.5."""
    exchange = make()
    holding(exchange, qty="2")
    with pytest.raises(BrokerRejected) as refused:
        exchange.submit(req("big", "sell", qty=None, notional=D(300), time_in_force=T.DAY))
    assert refused.value.status == 403
    exchange.submit(req("half", "sell", qty=None, notional=D(150), time_in_force=T.DAY))
    (filled,) = exchange.process()
    assert filled.order.filled_qty == D("1.5")
    assert exchange.position_qty("AAPL") == D("0.5")


@pytest.mark.parametrize(
    ("terms", "words"),
    [
        ({"symbol": "BTC/USD", "time_in_force": T.DAY}, "crypto time_in_force"),
        ({"symbol": "BTC/USD", "time_in_force": T.FOK}, "crypto time_in_force"),
        ({"symbol": "BTC/USD", "order_type": OrderType.STOP, "stop_price": D(1)}, "crypto order type"),
        (
            {"symbol": "BTC/USD", "order_type": OrderType.TRAILING_STOP, "trail_price": D(1)},
            "crypto order type",
        ),
        (
            {"symbol": "BTC/USD", "order_type": OrderType.LIMIT, "limit_price": D(1), "extended_hours": True},
            "crypto",
        ),
        ({"order_type": OrderType.STOP, "stop_price": D(1), "time_in_force": T.OPG}, "market and limit"),
        ({"qty": D("0.5"), "time_in_force": T.CLS}, "whole-share"),
        ({"order_type": OrderType.TRAILING_STOP, "trail_price": D(1), "time_in_force": T.FOK}, "day or gtc"),
        ({"order_type": OrderType.TRAILING_STOP, "trail_percent": D(100)}, "below 100"),
        (
            {"qty": None, "notional": D(50), "order_type": OrderType.LIMIT, "limit_price": D(1)},
            "market orders",
        ),
        ({"qty": None, "notional": D(50)}, "day orders"),
        ({"qty": None, "notional": D("0.5"), "time_in_force": T.DAY}, "at least"),
        (
            {"qty": D("0.5"), "order_type": OrderType.LIMIT, "limit_price": D(1), "time_in_force": T.DAY},
            "fractional",
        ),
        ({"qty": D("0.5")}, "fractional"),
        ({"qty": D("0.0000000001"), "time_in_force": T.DAY}, "9 decimal places"),
        ({"extended_hours": True, "time_in_force": T.DAY}, "extended hours"),
        (
            {
                "order_type": OrderType.LIMIT,
                "limit_price": D(1),
                "extended_hours": True,
                "time_in_force": T.IOC,
            },
            "extended",
        ),
    ],
)
def test_alpacas_combination_rules_refuse_with_422(
    make: ExchangeFactory, terms: dict[str, Any], words: str
) -> None:
    """Each combination Alpaca refuses is refused with 422, code 42210000, a message naming the rule,
    and no order."""
    exchange = make()
    exchange.set_price("AAPL", D(100))
    exchange.set_price("BTC/USD", D(100))
    with pytest.raises(BrokerRejected) as refused:
        exchange.submit(req("bad", **terms))
    assert (refused.value.status, refused.value.code) == (422, 42210000)
    assert words in str(refused.value)
    assert exchange.get_by_client_order_id("bad") is None


@pytest.mark.parametrize(
    "terms",
    [
        {"symbol": "BTC/USD", "qty": D("0.001")},
        {"symbol": "BTC/USD", "qty": None, "notional": D(20), "time_in_force": T.IOC},
        {"symbol": "BTC/USD", "order_type": OrderType.STOP_LIMIT, "stop_price": D(90), "limit_price": D(91)},
        {"qty": D("0.5"), "time_in_force": T.DAY},
        {"order_type": OrderType.LIMIT, "limit_price": D(1), "extended_hours": True},
        {"order_type": OrderType.TRAILING_STOP, "trail_percent": D("0.5"), "time_in_force": T.DAY},
    ],
    ids=[
        "crypto-fraction",
        "crypto-notional-ioc",
        "crypto-stop-limit",
        "fraction-day",
        "extended-gtc",
        "trail-day",
    ],
)
def test_combinations_alpaca_takes_are_accepted(make: ExchangeFactory, terms: dict[str, Any]) -> None:
    """Crypto fractions, notional and stop-limit; a fractional day market order; an extended-hours gtc
    limit; a day trailing stop: all accepted."""
    exchange = make()
    exchange.set_price("AAPL", D(100))
    exchange.set_price("BTC/USD", D(100))
    state: BrokerOrderState = exchange.submit(req("ok", **terms))
    assert state.status is OrderStatus.ACCEPTED


async def test_the_paper_broker_sends_a_crypto_day_order_as_gtc(make: ExchangeFactory) -> None:
    """Like AlpacaBroker, PaperBroker sends a strategy's day order for a pair as gtc, so it is taken."""
    exchange = make()
    broker = PaperBroker(exchange)
    state = await broker.submit(req("btc", symbol="BTC/USD", qty=D("0.01"), time_in_force=T.DAY))
    assert (state.status, state.time_in_force) == (OrderStatus.ACCEPTED, T.GTC)
    await broker.close()


@pytest.mark.parametrize(
    ("side", "hwm", "trail_price", "trail_percent", "stop"),
    [
        (Side.SELL, "100", "2", None, "98"),
        (Side.BUY, "100", "2", None, "102"),
        (Side.SELL, "123.45", None, "1.5", "121.60"),  # 121.598… to the cent
        (Side.BUY, "0.5", None, "3", "0.515"),  # under $1: hundredths of a cent
        (Side.SELL, "1", "5", None, "0.0001"),  # never at or below zero
    ],
)
def test_trail_stop_is_on_the_price_grid(
    side: Side, hwm: str, trail_price: str | None, trail_percent: str | None, stop: str
) -> None:
    """The stop is the trail away from the mark (below for a sell, above for a buy), rounded to the
    equity tick (a cent from $1, 0.0001 below), and stays positive."""
    price = None if trail_price is None else D(trail_price)
    percent = None if trail_percent is None else D(trail_percent)
    assert trail_stop(side, D(hwm), price, percent) == D(stop)
