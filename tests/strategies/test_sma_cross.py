"""The SMA crossover reference strategy and the strategy factory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoquant.domain.bars import Bar
from autoquant.domain.decisions import Action
from autoquant.domain.indicators import sma
from autoquant.domain.strategy import Holdings, StrategyState, decisions_of
from autoquant.errors import ConfigError
from autoquant.runtime.config import SmaCrossSettings
from autoquant.strategies import SmaCross, build_strategy
from autoquant.strategies import sma_cross as Reason

T0 = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
D = Decimal


def bars(closes: list[str], symbol: str = "AAPL") -> tuple[Bar, ...]:
    out = []
    for i, close in enumerate(closes):
        price = D(close)
        out.append(
            Bar(
                symbol=symbol,
                open_time=T0 + timedelta(minutes=i),
                close_time=T0 + timedelta(minutes=i + 1),
                open=price,
                high=price,
                low=price,
                close=price,
                volume=D(100),
                source="test",
            )
        )
    return tuple(out)


def state(
    closes: list[str],
    position: str = "0",
    open_orders: int = 0,
    fresh: bool = True,
) -> StrategyState:
    history = bars(closes)
    return StrategyState.assemble(
        strategy_id="sma",
        symbols=("AAPL",),
        bars={"AAPL": history},
        holdings={"AAPL": Holdings(position_qty=D(position), open_order_count=open_orders)},
        now_ns=history[-1].close_ns + (0 if fresh else 120_000_000_000),
        max_data_age_ns=60_000_000_000,
    )


STRATEGY = SmaCross(id="sma", symbol="AAPL", fast=2, slow=3, qty=D(10))
#: fast (2) and slow (3) SMAs: previous bar fast 10 <= slow 10, this bar fast 11 > slow 10.67.
BULLISH = ["10", "10", "10", "12"]
#: previous bar fast 10 >= slow 10, this bar fast 9 < slow 9.33.
BEARISH = ["10", "10", "10", "8"]
FLAT = ["10", "10", "10", "10"]


def test_bullish_cross_when_flat_buys_qty() -> None:
    """A bullish cross with no position and no open order buys the configured qty."""
    decision = STRATEGY.decide(state(BULLISH))
    assert decision.action is Action.BUY
    assert decision.reason == Reason.BULLISH_CROSS
    assert decision.intent is not None
    assert decision.intent.qty == D(10)
    assert decision.inputs["fast_sma"] == "11"
    assert decision.inputs["prev_slow_sma"] == "10"


def test_bearish_cross_when_long_sells_the_whole_position() -> None:
    """A bearish cross while long sells exactly the position, whatever the configured qty."""
    decision = STRATEGY.decide(state(BEARISH, position="7.5"))
    assert decision.action is Action.SELL
    assert decision.intent is not None
    assert decision.intent.qty == D("7.5")


@pytest.mark.parametrize(
    ("closes", "position", "open_orders", "fresh", "reason"),
    [
        (["10", "11", "12"], "0", 0, True, Reason.WARMING_UP),
        (FLAT, "0", 0, True, Reason.NO_CROSS),
        (BULLISH, "0", 0, False, Reason.STALE_DATA),
        (BULLISH, "0", 1, True, Reason.ORDER_OPEN),
        (BEARISH, "5", 1, True, Reason.ORDER_OPEN),
        (BULLISH, "10", 0, True, Reason.ALREADY_LONG),
        (BULLISH, "-1", 0, True, Reason.NOT_FLAT),
        (BEARISH, "0", 0, True, Reason.FLAT_NO_POSITION),
    ],
)
def test_holds_carry_their_reason(
    closes: list[str], position: str, open_orders: int, fresh: bool, reason: str
) -> None:
    """Every situation that does not trade holds with one reason from the fixed vocabulary."""
    decision = STRATEGY.decide(state(closes, position, open_orders, fresh))
    assert decision.action is Action.HOLD
    assert decision.reason == reason
    assert decision.intent is None


def test_cross_is_between_previous_bar_and_this_one() -> None:
    """Fast staying above slow after a cross is not a new cross."""
    assert STRATEGY.decide(state([*BULLISH, "13"])).reason == Reason.NO_CROSS


def test_decision_is_deterministic() -> None:
    """The same state gives the same decision, id included: decide is pure."""
    assert STRATEGY.decide(state(BULLISH)) == STRATEGY.decide(state(BULLISH))


def test_warmup_is_slow_plus_one() -> None:
    """The strategy needs slow + 1 bars to compare this bar's averages with the previous bar's."""
    assert STRATEGY.warmup == 4


def test_fast_must_be_less_than_slow() -> None:
    """Construction refuses fast >= slow, naming both."""
    with pytest.raises(ValueError, match=r"fast \(3\) must be less than slow \(3\)"):
        SmaCross(id="x", symbol="AAPL", fast=3, slow=3, qty=D(1))


def test_factory_builds_sma_cross_from_settings() -> None:
    """build_strategy turns a [[strategies]] entry into a working strategy."""
    settings = SmaCrossSettings(
        id="sma", kind="sma_cross", symbol="AAPL", params={"fast": 2, "slow": 3, "qty": D(10)}
    )
    strategy = build_strategy(settings)
    assert (strategy.id, strategy.symbols, strategy.warmup) == ("sma", ("AAPL",), 4)
    assert decisions_of(strategy.decide(state(BULLISH)))[0].action is Action.BUY


def test_factory_refuses_unknown_kind_naming_the_key() -> None:
    """An unknown kind is a ConfigError that names strategies[id].kind."""
    fields: dict[str, Any] = {"fast": 1, "slow": 2, "qty": D(1)}
    settings = SmaCrossSettings(id="x", kind="momentum", symbol="AAPL", params=fields)
    with pytest.raises(ConfigError, match=r"strategies\[x\]\.kind 'momentum'"):
        build_strategy(settings)


@given(
    value=st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2),
    length=st.integers(min_value=1, max_value=50),
    window=st.integers(min_value=1, max_value=50),
)
def test_sma_of_a_constant_series_is_the_constant(value: Decimal, length: int, window: int) -> None:
    """The SMA of a constant series is exactly that constant, for any window that fits."""
    series = [value] * length
    if window > length:
        with pytest.raises(ValueError, match="need"):
            sma(series, window)
    else:
        assert sma(series, window) == value


@given(st.lists(st.decimals(min_value=D("0.01"), max_value=D("1000"), places=2), min_size=4, max_size=30))
def test_a_constant_series_never_crosses(closes: list[Decimal]) -> None:
    """Any decision on arbitrary prices is a valid Decision; constant prices always hold no_cross."""
    decision = STRATEGY.decide(state([str(c) for c in closes]))
    assert decision.action in (Action.BUY, Action.HOLD)  # flat: never sells
    constant = STRATEGY.decide(state([str(closes[0])] * len(closes)))
    assert constant.reason == Reason.NO_CROSS
