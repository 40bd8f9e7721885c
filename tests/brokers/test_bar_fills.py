"""The next_bar fill rule, pure: where market, limit, stop and stop-limit orders trade within a bar."""

from __future__ import annotations

from decimal import Decimal

import pytest

from autoquant.brokers.paper.bar_fills import BarOutcome, BarPath, trade_in_bar
from autoquant.domain.values import OrderType, Side

D = Decimal
BAR = BarPath(open=D(100), high=D(105), low=D(95))
GAP_UP = BarPath(open=D(110), high=D(112), low=D(108))
GAP_DOWN = BarPath(open=D(90), high=D(92), low=D(88))


@pytest.mark.parametrize(
    ("order_type", "side", "bar", "limit", "stop", "expected"),
    [
        (OrderType.MARKET, Side.BUY, BAR, None, None, BarOutcome(D(100), False)),
        # limit buy: reached within the bar at the limit; a gap down fills at the (better) open
        (OrderType.LIMIT, Side.BUY, BAR, D(97), None, BarOutcome(D(97), False)),
        (OrderType.LIMIT, Side.BUY, GAP_DOWN, D(97), None, BarOutcome(D(90), False)),
        (OrderType.LIMIT, Side.BUY, BAR, D(94), None, BarOutcome(None, False)),
        (OrderType.LIMIT, Side.SELL, BAR, D(104), None, BarOutcome(D(104), False)),
        (OrderType.LIMIT, Side.SELL, GAP_UP, D(104), None, BarOutcome(D(110), False)),
        # stop sell (a stop loss): triggered at the stop within the bar, at the open on a gap through
        (OrderType.STOP, Side.SELL, BAR, None, D(96), BarOutcome(D(96), True)),
        (OrderType.STOP, Side.SELL, GAP_DOWN, None, D(96), BarOutcome(D(90), True)),
        (OrderType.STOP, Side.SELL, BAR, None, D(94), BarOutcome(None, False)),
        (OrderType.STOP, Side.BUY, BAR, None, D(104), BarOutcome(D(104), True)),
        # stop-limit buy: triggered at 104, fills at the trigger within its limit 106
        (OrderType.STOP_LIMIT, Side.BUY, BAR, D(106), D(104), BarOutcome(D(104), True)),
        # gap over both: triggered at the open 110, above the limit 106, never comes back: stays open
        (OrderType.STOP_LIMIT, Side.BUY, GAP_UP, D(106), D(104), BarOutcome(None, True)),
        (OrderType.STOP_LIMIT, Side.SELL, GAP_DOWN, D(89), D(96), BarOutcome(D(90), True)),
    ],
)
def test_where_each_order_type_trades_in_a_bar(
    order_type: OrderType,
    side: Side,
    bar: BarPath,
    limit: Decimal | None,
    stop: Decimal | None,
    expected: BarOutcome,
) -> None:
    """Market at the open; limits and stops at their price in the range, or at the open on a gap."""
    assert (
        trade_in_bar(order_type, side, bar, limit_price=limit, stop_price=stop, triggered=False) == expected
    )


def test_a_triggered_stop_limit_works_as_a_limit() -> None:
    """Once triggered, a stop-limit no longer needs its stop: it fills when the range reaches the limit."""
    outcome = trade_in_bar(
        OrderType.STOP_LIMIT, Side.BUY, BAR, limit_price=D(106), stop_price=D(120), triggered=True
    )
    assert outcome == BarOutcome(D(100), True)
