"""The strategy state: decision id and freshness derived from the newest bar, bars validated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from autoquant.domain.bars import Bar
from autoquant.domain.decisions import Action
from autoquant.domain.ids import decision_id
from autoquant.domain.strategy import Reason, StrategyState, hold, order, time_in_force_for
from autoquant.domain.values import Side, TimeInForce

T0 = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)


def bar(i: int, symbol: str = "AAPL", close: str = "100") -> Bar:
    price = Decimal(close)
    return Bar(
        symbol=symbol,
        open_time=T0 + timedelta(seconds=i),
        close_time=T0 + timedelta(seconds=i + 1),
        open=price,
        high=price,
        low=price,
        close=price,
        volume=Decimal(1),
        source="test",
    )


def state(bars: tuple[Bar, ...], now_offset_s: int = 0, max_age_s: int = 5) -> StrategyState:
    return StrategyState.assemble(
        strategy_id="s1",
        symbol="AAPL",
        bars=bars,
        position_qty=Decimal(0),
        open_order_count=0,
        open_order_qty=Decimal(0),
        now_ns=bars[-1].close_ns + now_offset_s * 1_000_000_000,
        max_data_age_ns=max_age_s * 1_000_000_000,
    )


def test_assemble_derives_decision_id_and_freshness_from_newest_bar() -> None:
    """The decision id is ids.decision_id on the newest bar's close; age is measured from it."""
    s = state((bar(0), bar(1)), now_offset_s=3)
    assert s.decision_id == decision_id("s1", "AAPL", bar(1).close_time)
    assert s.data_age_ns == 3_000_000_000
    assert s.data_fresh


@pytest.mark.parametrize(("offset", "fresh"), [(5, True), (4, True), (6, False)])
def test_freshness_is_inclusive(offset: int, fresh: bool) -> None:
    """A bar exactly max_data_age old is fresh; older is stale."""
    assert state((bar(0),), now_offset_s=offset).data_fresh is fresh


def test_bars_must_be_this_symbol_and_increasing() -> None:
    """A foreign-symbol bar or out-of-order bars are refused, naming the bars field."""
    with pytest.raises(ValidationError, match="bars"):
        state((bar(0), bar(1, symbol="MSFT")))
    with pytest.raises(ValidationError, match="bars"):
        state((bar(1), bar(0)))
    with pytest.raises(ValueError, match="bars"):
        StrategyState.assemble(
            strategy_id="s1",
            symbol="AAPL",
            bars=(),
            position_qty=Decimal(0),
            open_order_count=0,
            open_order_qty=Decimal(0),
            now_ns=0,
            max_data_age_ns=1,
        )


def test_hold_and_order_build_consistent_decisions() -> None:
    """hold() has no intent; order() carries an intent on the bar's close time with the same id."""
    s = state((bar(0), bar(1)))
    h = hold(s, Reason.NO_CROSS, {"x": "1"})
    assert (h.action, h.reason, h.intent, h.data_time) == (Action.HOLD, "no_cross", None, bar(1).close_time)
    o = order(s, Side.SELL, Decimal(3), Reason.BEARISH_CROSS)
    assert o.action is Action.SELL
    assert o.intent is not None
    assert (o.intent.decision_id, o.intent.qty, o.intent.data_time) == (
        s.decision_id,
        Decimal(3),
        bar(1).close_time,
    )


def test_crypto_orders_are_good_till_canceled() -> None:
    """Alpaca refuses day orders for crypto, so crypto symbols get gtc and stocks day."""
    assert time_in_force_for("BTC/USD") is TimeInForce.GTC
    assert time_in_force_for("AAPL") is TimeInForce.DAY
