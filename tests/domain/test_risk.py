"""The risk gate: every limit at, just under and just over; trading state, pauses, resizing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoquant.domain.controls import ACCOUNT, ControlState, PauseFlag, TradingState
from autoquant.domain.decisions import OrderIntent
from autoquant.domain.risk import (
    DAILY_LOSS_LIMIT,
    DATA_FRESHNESS,
    MAX_DRAWDOWN,
    MAX_GROSS_EXPOSURE,
    MAX_ORDER_NOTIONAL,
    MAX_ORDERS_PER_MINUTE,
    MAX_POSITION_NOTIONAL,
    PAUSED,
    TRADING_STATE,
    OpenOrderExposure,
    RiskLimits,
    RiskSnapshot,
    RiskVerdict,
    check,
    is_reducing,
)
from autoquant.domain.values import OrderType, Side

NOW = 1_700_000_000 * 1_000_000_000
BIG = Decimal("1e12")
D = Decimal


def limits(**overrides: Any) -> RiskLimits:
    base: dict[str, Any] = {
        "max_order_notional": BIG,
        "max_position_notional": BIG,
        "max_gross_exposure": BIG,
        "daily_loss_limit": BIG,
        "max_drawdown": BIG,
        "max_orders_per_minute": 1000,
        "max_data_age_s": 30.0,
    }
    return RiskLimits(**(base | overrides))


def snapshot(**overrides: Any) -> RiskSnapshot:
    base: dict[str, Any] = {
        "now_ns": NOW,
        "positions": {},
        "last_prices": {"AAPL": D(100), "MSFT": D(50)},
        "start_equity": D(100_000),
        "peak_equity": D(100_000),
        "equity": D(100_000),
        "data_age_ns": {"AAPL": 1_000_000_000, "MSFT": 1_000_000_000},
    }
    return RiskSnapshot(**(base | overrides))


def intent(
    qty: str | int = 1, side: Side = Side.BUY, symbol: str = "AAPL", strategy: str = "s1"
) -> OrderIntent:
    return OrderIntent(
        strategy_id=strategy,
        symbol=symbol,
        side=side,
        qty=D(qty),
        reason="test",
        decision_id="d-test",
        data_time=datetime(2023, 11, 14, tzinfo=UTC),
    )


def result(verdict: RiskVerdict, name: str) -> bool:
    return next(c.passed for c in verdict.checks if c.name == name)


def test_clean_order_passes_every_named_check() -> None:
    """An order within every limit is allowed and all nine checks are reported, passed."""
    verdict = check(intent(), snapshot(), limits())
    assert verdict.allowed
    assert [c.name for c in verdict.checks] == [
        TRADING_STATE,
        PAUSED,
        DATA_FRESHNESS,
        MAX_ORDER_NOTIONAL,
        MAX_POSITION_NOTIONAL,
        MAX_GROSS_EXPOSURE,
        DAILY_LOSS_LIMIT,
        MAX_DRAWDOWN,
        MAX_ORDERS_PER_MINUTE,
    ]
    assert all(c.passed for c in verdict.checks)
    assert verdict.resized_qty is None


@pytest.mark.parametrize(("qty", "allowed"), [("10", True), ("9.99", True), ("10.01", False)])
def test_max_order_notional_is_inclusive(qty: str, allowed: bool) -> None:
    """Order notional exactly at the limit passes, just under passes, just over is refused."""
    verdict = check(intent(qty), snapshot(), limits(max_order_notional=D(1000)))
    assert verdict.allowed is allowed
    assert result(verdict, MAX_ORDER_NOTIONAL) is allowed
    if not allowed:
        assert verdict.reason.startswith("max_order_notional: order notional 1001.00")


def test_order_notional_uses_the_limit_price() -> None:
    """A limit order's notional is priced at its limit price, not the last price."""
    order = intent(10).model_copy(update={"order_type": OrderType.LIMIT, "limit_price": D("100.01")})
    verdict = check(order, snapshot(), limits(max_order_notional=D(1000)))
    assert not result(verdict, MAX_ORDER_NOTIONAL)


@pytest.mark.parametrize(("qty", "allowed"), [("10", True), ("9.99", True), ("10.01", False)])
def test_max_position_notional_counts_position_and_open_orders(qty: str, allowed: bool) -> None:
    """Position 3 + open buy 2 + order, at 100, against a 1500 limit: at, under and over."""
    snap = snapshot(
        positions={"AAPL": D(3)},
        open_orders=(OpenOrderExposure(symbol="AAPL", side=Side.BUY, remaining_qty=D(2), price=D(100)),),
    )
    verdict = check(intent(qty), snap, limits(max_position_notional=D(1500)))
    assert result(verdict, MAX_POSITION_NOTIONAL) is allowed
    assert verdict.allowed is allowed


@pytest.mark.parametrize(("qty", "allowed"), [("10", True), ("9.99", True), ("10.01", False)])
def test_max_gross_exposure_sums_all_symbols(qty: str, allowed: bool) -> None:
    """MSFT short 4 @50 (200) + open MSFT sell 6 (300) + AAPL order, against 1500: at, under, over."""
    snap = snapshot(
        positions={"MSFT": D(-4)},
        open_orders=(OpenOrderExposure(symbol="MSFT", side=Side.SELL, remaining_qty=D(6), price=D(50)),),
    )
    verdict = check(intent(qty), snap, limits(max_gross_exposure=D(1500)))
    assert result(verdict, MAX_GROSS_EXPOSURE) is allowed
    assert verdict.allowed is allowed


@pytest.mark.parametrize(("loss", "allowed"), [("100", True), ("99.99", True), ("100.01", False)])
def test_daily_loss_limit_is_inclusive(loss: str, allowed: bool) -> None:
    """A loss exactly at the daily limit still allows new risk; a cent more refuses it."""
    snap = snapshot(equity=D(100_000) - D(loss))
    verdict = check(intent(), snap, limits(daily_loss_limit=D(100)))
    assert result(verdict, DAILY_LOSS_LIMIT) is allowed
    assert verdict.allowed is allowed


def test_daily_loss_limit_still_allows_reducing_orders() -> None:
    """Past the loss limit, an order that shrinks the position is still allowed."""
    snap = snapshot(equity=D(99_000), positions={"AAPL": D(5)})
    assert check(intent(5, Side.SELL), snap, limits(daily_loss_limit=D(100))).allowed
    assert not check(intent(6, Side.SELL), snap, limits(daily_loss_limit=D(100))).allowed


@pytest.mark.parametrize(("drawdown", "allowed"), [("300", True), ("299.99", True), ("300.01", False)])
def test_max_drawdown_is_inclusive(drawdown: str, allowed: bool) -> None:
    """Drawdown from the peak exactly at the limit passes; a cent more refuses new risk."""
    snap = snapshot(peak_equity=D(101_000), equity=D(101_000) - D(drawdown), start_equity=D(101_000))
    verdict = check(intent(), snap, limits(max_drawdown=D(300)))
    assert result(verdict, MAX_DRAWDOWN) is allowed
    assert verdict.allowed is allowed
    reducing = check(intent(1, Side.SELL), snap.model_copy(update={"positions": {"AAPL": D(1)}}), limits())
    assert reducing.allowed


@pytest.mark.parametrize(("recent", "allowed"), [(2, True), (1, True), (3, False)])
def test_max_orders_per_minute_is_inclusive(recent: int, allowed: bool) -> None:
    """With a limit of 3, the order that makes exactly 3 in the last minute passes, a 4th does not."""
    times = tuple(NOW - i * 1_000_000_000 for i in range(recent))
    verdict = check(intent(), snapshot(recent_order_ns=times), limits(max_orders_per_minute=3))
    assert result(verdict, MAX_ORDERS_PER_MINUTE) is allowed


def test_orders_older_than_a_minute_do_not_count() -> None:
    """Submits exactly a minute old or older fall out of the rate window."""
    times = (NOW - 60_000_000_000, NOW - 61_000_000_000, NOW - 1)
    verdict = check(intent(), snapshot(recent_order_ns=times), limits(max_orders_per_minute=2))
    assert result(verdict, MAX_ORDERS_PER_MINUTE)


@pytest.mark.parametrize(
    ("age_ns", "allowed"), [(30_000_000_000, True), (29_999_999_999, True), (30_000_000_001, False)]
)
def test_data_freshness_is_inclusive(age_ns: int, allowed: bool) -> None:
    """Data exactly max_data_age_s old is fresh; a nanosecond older is stale."""
    snap = snapshot(data_age_ns={"AAPL": age_ns})
    assert result(check(intent(), snap, limits(max_data_age_s=30.0)), DATA_FRESHNESS) is allowed


def test_missing_data_or_price_fails_closed() -> None:
    """No data age or no last price for the symbol refuses the order, naming the symbol."""
    verdict = check(intent(), snapshot(data_age_ns={}, last_prices={}), limits())
    assert not verdict.allowed
    assert "AAPL" in verdict.reason
    assert not result(verdict, MAX_ORDER_NOTIONAL)
    assert not result(verdict, MAX_GROSS_EXPOSURE)


def test_a_held_symbol_without_price_fails_gross_exposure() -> None:
    """Gross exposure cannot be known without a price for every held symbol, so it fails closed."""
    snap = snapshot(positions={"TSLA": D(1)})
    verdict = check(intent(), snap, limits())
    assert not result(verdict, MAX_GROSS_EXPOSURE)
    assert "TSLA" in verdict.reason


def test_halted_refuses_everything_even_reducing() -> None:
    """HALTED refuses a new order of any kind, with the halt reason in the verdict."""
    controls = ControlState(trading_state=TradingState.HALTED, state_reason="operator said so")
    snap = snapshot(controls=controls, positions={"AAPL": D(5)})
    verdict = check(intent(5, Side.SELL), snap, limits())
    assert not verdict.allowed
    assert verdict.reason == "trading_state: trading is halted: operator said so"


def test_reducing_accepts_only_orders_that_shrink_exposure() -> None:
    """REDUCING allows selling down a long, refuses buying more and refuses flipping short."""
    snap = snapshot(controls=ControlState(trading_state=TradingState.REDUCING), positions={"AAPL": D(5)})
    assert check(intent(5, Side.SELL), snap, limits()).allowed
    assert check(intent(2, Side.SELL), snap, limits()).allowed
    assert not check(intent(1, Side.BUY), snap, limits()).allowed
    assert not check(intent(6, Side.SELL), snap, limits()).allowed
    assert not check(intent(1, Side.SELL, symbol="MSFT"), snap, limits()).allowed


def test_reducing_counts_open_orders_on_the_same_side() -> None:
    """A sell that, with sells already open, would take a long past zero does not reduce."""
    open_sell = OpenOrderExposure(symbol="AAPL", side=Side.SELL, remaining_qty=D(4), price=D(100))
    snap = snapshot(positions={"AAPL": D(5)}, open_orders=(open_sell,))
    assert is_reducing(intent(1, Side.SELL), snap)
    assert not is_reducing(intent(2, Side.SELL), snap)


@pytest.mark.parametrize("scope", [ACCOUNT, "s1"])
def test_pause_refuses_the_paused_strategy(scope: str) -> None:
    """An account pause or this strategy's pause refuses its orders, naming which; another's does not."""
    flag = PauseFlag(scope=scope, reason="looking into it", actor="op", since_ns=0)
    snap = snapshot(controls=ControlState(paused={scope: flag}))
    verdict = check(intent(), snap, limits())
    assert not verdict.allowed
    who = "the account" if scope == ACCOUNT else "s1"
    assert verdict.reason == f"paused: {who} is paused: looking into it"
    other = check(intent(strategy="s2"), snap, limits())
    assert other.allowed is (scope != ACCOUNT)


def test_two_strategies_together_breaching_an_account_limit_are_refused() -> None:
    """Strategy s1's open order counts against s2's order: the snapshot is account-level."""
    s1_order = OpenOrderExposure(symbol="AAPL", side=Side.BUY, remaining_qty=D(10), price=D(100))
    lim = limits(max_position_notional=D(1500), max_gross_exposure=D(1500))
    alone = check(intent(10, strategy="s2"), snapshot(), lim)
    together = check(intent(10, strategy="s2"), snapshot(open_orders=(s1_order,)), lim)
    assert alone.allowed
    assert not together.allowed
    assert not result(together, MAX_POSITION_NOTIONAL)
    assert not result(together, MAX_GROSS_EXPOSURE)


def test_resize_shrinks_an_order_to_fit_the_notional_limits() -> None:
    """With resize on, an order over the position limit is cut to what fits, rounded down."""
    snap = snapshot(positions={"AAPL": D("2.5")})
    verdict = check(intent("10.00"), snap, limits(max_position_notional=D("1000"), resize=True))
    assert verdict.allowed
    assert verdict.resized_qty == D("7.50")
    assert not result(verdict, MAX_POSITION_NOTIONAL)  # the original check is kept for the ledger
    assert verdict.reason.startswith("resized from 10.00 to 7.50")


def test_resize_rounds_down_to_the_quantity_precision() -> None:
    """An integer quantity is resized to an integer, never rounded up past the limit."""
    snap = snapshot(last_prices={"AAPL": D(300)})
    verdict = check(intent(10), snap, limits(max_order_notional=D(1000), resize=True))
    assert verdict.resized_qty == D(3)
    assert check(intent(3), snap, limits(max_order_notional=D(1000))).allowed


def test_resize_to_zero_is_denied() -> None:
    """When not even the smallest step fits, the order is denied, not resized to zero."""
    snap = snapshot(positions={"AAPL": D(10)})
    verdict = check(intent(5), snap, limits(max_position_notional=D(1000), resize=True))
    assert not verdict.allowed
    assert verdict.resized_qty is None
    assert "no smaller qty fits" in verdict.reason


def test_resize_is_not_used_when_a_non_notional_check_fails() -> None:
    """A stale-data failure next to a notional one denies outright: size cannot fix staleness."""
    snap = snapshot(data_age_ns={"AAPL": 60_000_000_000})
    verdict = check(intent(20), snap, limits(max_order_notional=D(1000), resize=True))
    assert not verdict.allowed
    assert verdict.resized_qty is None


def test_verdict_serialises_with_numbers_in_the_detail() -> None:
    """as_dict gives the ledger every check with a detail naming the numbers compared."""
    data = check(intent(11), snapshot(), limits(max_order_notional=D(1000))).as_dict()
    assert data["allowed"] is False
    checks = data["checks"]
    assert isinstance(checks, list)
    assert checks[3] == {
        "name": MAX_ORDER_NOTIONAL,
        "passed": False,
        "detail": "order notional 1100 (qty 11 x 100), max 1000",
    }


def test_limits_mirror_the_config_settings() -> None:
    """RiskLimits accepts exactly what config.RiskSettings dumps (the caller's one-line conversion)."""
    from autoquant.runtime.config import RiskSettings

    settings = RiskSettings()
    assert RiskLimits(**settings.model_dump()).model_dump() == settings.model_dump()


@given(
    qty=st.decimals(min_value=D("0.01"), max_value=D(1000), places=2),
    position=st.decimals(min_value=D(-100), max_value=D(100), places=2),
    side=st.sampled_from(list(Side)),
)
def test_allowed_exactly_when_every_check_passes(qty: Decimal, position: Decimal, side: Side) -> None:
    """Without resizing, an order is allowed iff every check passed; the reason is the first failure."""
    lim = limits(max_order_notional=D(5000), max_position_notional=D(8000), max_gross_exposure=D(9000))
    verdict = check(intent(str(qty), side), snapshot(positions={"AAPL": position}), lim)
    failed = [c for c in verdict.checks if not c.passed]
    assert verdict.allowed is (not failed)
    if failed:
        assert verdict.reason == f"{failed[0].name}: {failed[0].detail}"
