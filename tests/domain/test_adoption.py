"""Adoption after a restore, the pure part: only this account's ids, only with one owning strategy."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from autoquant.domain.adoption import adopted_reservation, owner
from autoquant.domain.broker import BrokerOrderState
from autoquant.domain.ids import client_order_id, follows_scheme
from autoquant.domain.orders import OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce

OURS = client_order_id("sma-aapl", "AAPL", datetime(2026, 1, 5, 14, 30, tzinfo=UTC), Side.BUY)


def state(coid: str = OURS, symbol: str = "AAPL") -> BrokerOrderState:
    return BrokerOrderState(
        broker_order_id="b-1",
        client_order_id=coid,
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal(3),
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.DAY,
        status=OrderStatus.FILLED,
        filled_qty=Decimal(3),
        created_ns=10,
        updated_ns=11,
    )


@pytest.mark.parametrize(
    ("coid", "ours"),
    [
        (OURS, True),
        ("aq-" + "0" * 39, False),
        ("aq-" + "G" * 40, False),
        ("manual-order-1", False),
        ("xx-" + "0" * 40, False),
    ],
)
def test_follows_scheme_knows_only_our_shape(coid: str, ours: bool) -> None:
    """Only 'aq-' and 40 lower-case hex digits is one of ours."""
    assert follows_scheme(coid) is ours


def test_owner_needs_our_id_and_a_single_strategy_for_the_symbol() -> None:
    """Our id and one strategy on the symbol: that strategy; a foreign id or an ambiguous symbol: None."""
    assert owner(state(), {"AAPL": {"sma-aapl"}}) == "sma-aapl"
    assert owner(state("manual-1"), {"AAPL": {"sma-aapl"}}) is None
    assert owner(state(), {"AAPL": {"a", "b"}}) is None
    assert owner(state(symbol="MSFT"), {"AAPL": {"sma-aapl"}}) is None


def test_adopted_reservation_has_no_decision_and_the_broker_terms() -> None:
    """The adopted order is RESERVED with no decision, the broker's terms, created when the broker did."""
    order = adopted_reservation(state(), "sma-aapl")
    assert order.decision_id is None and order.status is OrderStatus.RESERVED
    assert (order.symbol, order.side, order.qty, order.created_ns) == ("AAPL", Side.BUY, Decimal(3), 10)
