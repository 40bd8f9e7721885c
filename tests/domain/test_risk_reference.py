"""The tuned risk gate gives exactly the verdict of the plain one (``risk_reference``), digit for digit."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from autoquant.domain.controls import ACCOUNT, ControlState, PauseFlag, TradingState
from autoquant.domain.decisions import OrderIntent
from autoquant.domain.risk import OpenOrderExposure, RiskLimits, RiskSnapshot, check, is_reducing
from autoquant.domain.values import OrderType, Side
from tests.domain import risk_reference

NOW = 1_700_000_000 * 1_000_000_000
SYMBOLS = ("AAPL", "MSFT", "NVDA", "SPY", "BTC/USD")


def decimals(*, signed: bool = False, positive: bool = False) -> st.SearchStrategy[Decimal]:
    """Exponents from -4 to +3, so ``1E+2`` and ``0.0100`` style values are covered (they print
    differently, and a detail string must print the same)."""
    low = 1 if positive else 0
    magnitudes = st.builds(
        lambda digits, exponent: Decimal(digits).scaleb(exponent),
        st.integers(low, 2_000),
        st.integers(-4, 3),
    )
    if not signed:
        return magnitudes
    return st.builds(lambda value, negative: -value if negative else value, magnitudes, st.booleans())


@st.composite
def accounts(draw: st.DrawFn) -> tuple[OrderIntent, RiskSnapshot, RiskLimits]:
    # At most one symbol lacks a price: with two, which one the message names was never specified.
    unpriced = draw(st.sets(st.sampled_from(SYMBOLS), max_size=1))
    prices = {s: draw(decimals(positive=True)) for s in SYMBOLS if s not in unpriced}
    positions = draw(st.dictionaries(st.sampled_from(SYMBOLS), decimals(signed=True), max_size=5))
    open_orders = tuple(
        draw(
            st.lists(
                st.builds(
                    OpenOrderExposure,
                    symbol=st.sampled_from(SYMBOLS),
                    side=st.sampled_from(list(Side)),
                    remaining_qty=decimals(),
                    price=decimals(positive=True),
                ),
                max_size=8,
            )
        )
    )
    paused = draw(st.sets(st.sampled_from([ACCOUNT, "s1", "s2"]), max_size=2))
    controls = ControlState(
        trading_state=draw(st.sampled_from(list(TradingState))),
        state_reason="because",
        paused={scope: PauseFlag(scope=scope, reason="why", actor="op", since_ns=0) for scope in paused},
    )
    start = draw(decimals())
    snapshot = RiskSnapshot(
        now_ns=NOW,
        positions=positions,
        last_prices=prices,
        open_orders=open_orders,
        start_equity=start,
        peak_equity=start + draw(decimals()),
        equity=draw(decimals()),
        recent_order_ns=tuple(sorted(NOW - draw(st.integers(0, 90)) * 1_000_000_000 for _ in range(5))),
        data_age_ns=draw(st.dictionaries(st.sampled_from(SYMBOLS), st.integers(0, 40_000_000_000))),
        controls=controls,
    )
    limit_price = draw(st.none() | decimals(positive=True))
    intent = OrderIntent(
        strategy_id=draw(st.sampled_from(["s1", "s2"])),
        symbol=draw(st.sampled_from(SYMBOLS)),
        side=draw(st.sampled_from(list(Side))),
        qty=draw(decimals(positive=True)),
        order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
        limit_price=limit_price,
        reason="test",
        decision_id="d-test",
        data_time=datetime(2023, 11, 14, tzinfo=UTC),
    )
    limits = RiskLimits(
        max_order_notional=draw(decimals(positive=True)) * 100,
        max_position_notional=draw(decimals(positive=True)) * 100,
        max_gross_exposure=draw(decimals(positive=True)) * 100,
        daily_loss_limit=draw(decimals()),
        max_drawdown=draw(decimals()),
        max_orders_per_minute=draw(st.integers(1, 8)),
        max_data_age_s=draw(st.sampled_from([1.0, 30.0, 0.5])),
        resize=draw(st.booleans()),
    )
    return intent, snapshot, limits


@settings(max_examples=400)
@given(accounts())
def test_tuned_gate_matches_the_reference_exactly(
    account: tuple[OrderIntent, RiskSnapshot, RiskLimits],
) -> None:
    """Same verdict, reason, resized quantity and every check's values (compared by repr, so a
    Decimal must keep its exponent too) as the plain implementation, on random accounts."""
    intent, snapshot, limits = account
    tuned = check(intent, snapshot, limits)
    reference = risk_reference.check(intent, snapshot, limits)
    assert repr(tuned) == repr(reference)
    assert tuned.as_dict() == reference.as_dict()
    assert is_reducing(intent, snapshot) is risk_reference._reduces(intent, intent.qty, snapshot)
