"""The strategy state: decision id and freshness derived from the newest bar, bars validated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from autoquant.domain.bars import Bar
from autoquant.domain.decisions import Action
from autoquant.domain.ids import decision_id
from autoquant.domain.strategy import Holdings, StrategyState, hold, order
from autoquant.domain.values import OrderType, Side, TimeInForce

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
        symbols=("AAPL",),
        bars={"AAPL": bars},
        now_ns=bars[-1].close_ns + now_offset_s * 1_000_000_000,
        max_data_age_ns=max_age_s * 1_000_000_000,
    )


def test_assemble_derives_decision_id_and_freshness_from_newest_bar() -> None:
    """The decision id is ids.decision_id on the newest bar's close; age is measured from it."""
    s = state((bar(0), bar(1)), now_offset_s=3)
    assert s.decision_id() == decision_id("s1", "AAPL", bar(1).close_time)
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
            symbols=("AAPL",),
            bars={"AAPL": ()},
            now_ns=0,
            max_data_age_ns=1,
        )


def test_hold_and_order_build_consistent_decisions() -> None:
    """hold() has no intent; order() carries an intent on the bar's close time with the same id."""
    s = state((bar(0), bar(1)))
    h = hold(s, "no_cross", {"x": "1"})
    assert (h.action, h.reason, h.intent, h.data_time) == (Action.HOLD, "no_cross", None, bar(1).close_time)
    o = order(s, Side.SELL, Decimal(3), "bearish_cross")
    assert o.action is Action.SELL
    assert o.intent is not None
    assert (o.intent.decision_id, o.intent.qty, o.intent.data_time) == (
        s.decision_id(),
        Decimal(3),
        bar(1).close_time,
    )


def test_order_types_carry_their_prices_and_refuse_missing_ones() -> None:
    """limit, stop and stop_limit intents carry the prices their type needs; a missing one is refused."""
    s = state((bar(0), bar(1)))
    limit = order(s, Side.BUY, Decimal(1), "dip", order_type=OrderType.LIMIT, limit_price=Decimal("99"))
    assert limit.intent is not None and limit.intent.limit_price == Decimal("99")
    stop = order(
        s,
        Side.SELL,
        Decimal(1),
        "protect",
        order_type=OrderType.STOP_LIMIT,
        stop_price=Decimal("95"),
        limit_price=Decimal("94"),
        time_in_force=TimeInForce.GTC,
    )
    assert stop.intent is not None
    assert (stop.intent.stop_price, stop.intent.time_in_force) == (Decimal("95"), TimeInForce.GTC)
    with pytest.raises(ValidationError, match="stop_price is required"):
        order(s, Side.SELL, Decimal(1), "protect", order_type=OrderType.STOP)
    with pytest.raises(ValidationError, match="limit_price is only"):
        order(s, Side.SELL, Decimal(1), "x", order_type=OrderType.STOP, stop_price=D1, limit_price=D1)


D1 = Decimal(1)


def two_symbol_state() -> StrategyState:
    return StrategyState.assemble(
        strategy_id="pair",
        symbols=("AAPL", "MSFT"),
        bars={"AAPL": (bar(0), bar(1)), "MSFT": (bar(0, "MSFT"), bar(1, "MSFT"))},
        holdings={"MSFT": Holdings(position_qty=Decimal(2))},
        now_ns=bar(1).close_ns,
        max_data_age_ns=1,
    )


def test_a_multi_symbol_state_decides_per_symbol() -> None:
    """Several symbols: holdings per symbol, one decision id per (strategy, symbol, bar time)."""
    s = two_symbol_state()
    assert (s.held("MSFT").position_qty, s.held("AAPL").position_qty) == (Decimal(2), Decimal(0))
    sell = order(s, Side.SELL, Decimal(2), "rotate_out", symbol="MSFT")
    buy = order(s, Side.BUY, Decimal(1), "rotate_in", symbol="AAPL")
    assert sell.decision_id != buy.decision_id
    assert sell.decision_id == decision_id("pair", "MSFT", bar(1).close_time)
    with pytest.raises(ValueError, match="not one of"):
        order(s, Side.BUY, Decimal(1), "x", symbol="TSLA")


def test_reasons_are_the_strategys_own_short_words() -> None:
    """Any short reason is accepted as the strategy's own; an empty or overlong one is refused."""
    s = state((bar(0),))
    assert hold(s, "waiting_for_the_moon").reason == "waiting_for_the_moon"
    with pytest.raises(ValueError, match="reason"):
        hold(s, "")
    with pytest.raises(ValueError, match="reason"):
        hold(s, "x" * 65)
