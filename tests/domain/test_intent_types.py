"""Every Alpaca order type as a strategy intent: the domain's rules and the risk gate's notional basis."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from autoquant.domain.adoption import adopted_reservation
from autoquant.domain.broker import BrokerOrderState
from autoquant.domain.decisions import OrderIntent
from autoquant.domain.orders import Order, OrderEvent, OrderEventKind, OrderStatus, apply
from autoquant.domain.risk import MAX_ORDER_NOTIONAL, RiskLimits, RiskSnapshot, check
from autoquant.domain.values import OrderType, Side, TimeInForce

D = Decimal
BIG = D(10) ** 9
T = TimeInForce


def intent(**terms: Any) -> OrderIntent:
    base: dict[str, Any] = {
        "strategy_id": "s1",
        "symbol": "AAPL",
        "side": Side.BUY,
        "qty": D(10),
        "reason": "test",
        "decision_id": "d-1",
        "data_time": datetime(2026, 1, 5, tzinfo=UTC),
    }
    return OrderIntent(**(base | terms))


def gate(order: OrderIntent, max_order: Decimal, *, resize: bool = False) -> bool:
    limits = RiskLimits(
        max_order_notional=max_order,
        max_position_notional=BIG,
        max_gross_exposure=BIG,
        daily_loss_limit=BIG,
        max_drawdown=BIG,
        max_orders_per_minute=1000,
        max_data_age_s=30.0,
        resize=resize,
    )
    snapshot = RiskSnapshot(
        now_ns=0,
        positions={},
        last_prices={"AAPL": D(100)},
        start_equity=D(100_000),
        peak_equity=D(100_000),
        equity=D(100_000),
        data_age_ns={"AAPL": 0},
    )
    verdict = check(order, snapshot, limits)
    passed = next(c.passed for c in verdict.checks if c.name == MAX_ORDER_NOTIONAL)
    assert verdict.allowed is passed  # nothing else limits (and a notional order is never resized)
    return passed


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"order_type": OrderType.TRAILING_STOP}, "exactly one of trail_price and trail_percent"),
        (
            {"order_type": OrderType.TRAILING_STOP, "trail_price": D(1), "trail_percent": D(1)},
            "exactly one of trail_price and trail_percent",
        ),
        ({"trail_price": D(1)}, "only for trailing_stop orders"),
        (
            {"order_type": OrderType.TRAILING_STOP, "trail_percent": D(100)},
            "trail_percent must be below 100",
        ),
        (
            {"order_type": OrderType.TRAILING_STOP, "trail_price": D(1), "time_in_force": T.IOC},
            "must be day or gtc",
        ),
        ({"qty": D(0)}, "qty must be greater than 0"),
        ({"notional": D(500)}, "either qty or notional"),
        ({"qty": D(0), "notional": D(500), "time_in_force": T.GTC}, "market order with time_in_force day"),
        (
            {"qty": D(0), "notional": D(500), "order_type": OrderType.LIMIT, "limit_price": D(1)},
            "market order with time_in_force day",
        ),
        ({"time_in_force": T.OPG, "order_type": OrderType.STOP, "stop_price": D(1)}, "market and limit"),
        ({"time_in_force": T.CLS, "qty": D("1.5")}, "whole-share quantities"),
        ({"extended_hours": True}, "limit orders with time_in_force day or gtc"),
        (
            {
                "extended_hours": True,
                "order_type": OrderType.LIMIT,
                "limit_price": D(1),
                "time_in_force": T.IOC,
            },
            "limit orders with time_in_force day or gtc",
        ),
    ],
)
def test_an_intent_out_of_the_rules_is_refused_in_one_line(terms: dict[str, Any], message: str) -> None:
    """Each venue-independent rule refuses its intent with a one-line error naming the rule."""
    with pytest.raises(ValidationError) as caught:
        intent(**terms)
    (error,) = caught.value.errors()
    assert message in error["msg"] and "\n" not in error["msg"]


def test_every_type_in_its_terms_is_an_intent() -> None:
    """Trailing stops, notional, opg/cls and extended-hours limits are all expressible intents."""
    trailing = intent(order_type=OrderType.TRAILING_STOP, trail_percent=D("2.5"), time_in_force=T.GTC)
    notional = intent(qty=D(0), notional=D("250.50"))
    opening = intent(order_type=OrderType.LIMIT, limit_price=D(99), time_in_force=T.OPG)
    closing = intent(time_in_force=T.CLS)
    late = intent(order_type=OrderType.LIMIT, limit_price=D(99), extended_hours=True)
    assert (trailing.trail_percent, notional.notional, notional.qty) == (D("2.5"), D("250.50"), D(0))
    assert (opening.time_in_force, closing.time_in_force, late.extended_hours) == (T.OPG, T.CLS, True)


@pytest.mark.parametrize(("limit", "allowed"), [("1020", True), ("1019.99", False)])
def test_a_trailing_buy_is_counted_at_last_plus_its_price_trail(limit: str, allowed: bool) -> None:
    """A trailing buy stop of $2 at last 100 counts 10 x 102 = 1020: allowed at 1020, not a cent under."""
    order = intent(order_type=OrderType.TRAILING_STOP, trail_price=D(2))
    assert gate(order, D(limit)) is allowed


@pytest.mark.parametrize(("limit", "allowed"), [("1025", True), ("1024.99", False)])
def test_a_trailing_buy_is_counted_at_last_plus_its_percent_trail(limit: str, allowed: bool) -> None:
    """A trailing buy stop of 2.5% at last 100 counts 10 x 102.5 = 1025."""
    order = intent(order_type=OrderType.TRAILING_STOP, trail_percent=D("2.5"))
    assert gate(order, D(limit)) is allowed


@pytest.mark.parametrize(("limit", "allowed"), [("1000", True), ("999.99", False)])
def test_a_trailing_sell_is_counted_at_the_last_price(limit: str, allowed: bool) -> None:
    """A trailing sell stop counts at the last price (its stop starts below it): 10 x 100 = 1000."""
    order = intent(side=Side.SELL, order_type=OrderType.TRAILING_STOP, trail_price=D(2))
    assert gate(order, D(limit)) is allowed


@pytest.mark.parametrize(("notional", "allowed"), [("1000", True), ("1000.01", False)])
def test_a_notional_order_is_counted_at_its_dollars(notional: str, allowed: bool) -> None:
    """A notional order counts its own amount: $1000 passes a $1000 limit, $1000.01 does not (no resize)."""
    order = intent(qty=D(0), notional=D(notional))
    assert gate(order, D(1000)) is allowed
    assert gate(order, D(1000), resize=True) is allowed


def _notional_state(filled: str, status: OrderStatus) -> BrokerOrderState:
    return BrokerOrderState(
        broker_order_id="b-1",
        client_order_id="c-1",
        symbol="AAPL",
        side=Side.BUY,
        qty=D(filled),
        order_type=OrderType.MARKET,
        time_in_force=T.DAY,
        notional=D(500),
        status=status,
        filled_qty=D(filled),
        created_ns=1,
        updated_ns=1,
    )


@pytest.mark.parametrize(("filled", "status"), [("0", OrderStatus.ACCEPTED), ("4.9", OrderStatus.FILLED)])
def test_an_adopted_notional_order_is_reserved_with_qty_zero(filled: str, status: OrderStatus) -> None:
    """A notional order adopted from the broker, filled or not, is a valid reservation of qty 0."""
    order = adopted_reservation(_notional_state(filled, status), "s1")
    assert (order.qty, order.notional, order.remaining_qty) == (D(0), D(500), D(0))


def test_a_notional_order_fills_by_its_events_without_overfill() -> None:
    """A notional order's fills set its filled qty and status, never an overfill of its qty 0."""
    order = Order(
        client_order_id="c-1", strategy_id="s1", symbol="AAPL", side=Side.BUY, qty=D(0), notional=D(500)
    )
    kinds = [(OrderEventKind.PARTIAL_FILL, "2"), (OrderEventKind.FILL, "4.9")]
    for kind, filled in kinds:
        order = apply(
            order, OrderEvent(client_order_id="c-1", kind=kind, filled_qty=D(filled), local_ts_ns=2)
        )
        assert order.filled_qty == D(filled)
    assert order.status is OrderStatus.FILLED
