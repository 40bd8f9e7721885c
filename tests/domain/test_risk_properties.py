"""The risk gate against a plain oracle on random accounts: every check's pass or fail, the verdict,
and resizing. The oracle works from the list of open orders with Fractions, so it shares no code (and
no Decimal subtleties) with the gate."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoquant.domain.controls import ACCOUNT, ControlState, PauseFlag, TradingState
from autoquant.domain.decisions import OrderIntent
from autoquant.domain.risk import OpenOrderExposure, RiskLimits, RiskSnapshot, check, is_reducing
from autoquant.domain.values import OrderType, Side

NOW = 1_700_000_000 * 1_000_000_000
MINUTE = 60 * 1_000_000_000
SYMBOLS = ("AAPL", "MSFT", "NVDA", "SPY", "BTC/USD")
CHECK_ORDER = [
    "trading_state",
    "paused",
    "data_freshness",
    "max_order_notional",
    "max_position_notional",
    "max_gross_exposure",
    "daily_loss_limit",
    "max_drawdown",
    "max_orders_per_minute",
]

Account = tuple[OrderIntent, RiskSnapshot, tuple[OpenOrderExposure, ...], RiskLimits]


def decimals(*, signed: bool = False, positive: bool = False) -> st.SearchStrategy[Decimal]:
    """Exponents from -4 to +3, so ``1E+2`` and ``0.0100`` style values are covered."""
    magnitudes = st.builds(
        lambda digits, exponent: Decimal(digits).scaleb(exponent),
        st.integers(1 if positive else 0, 2_000),
        st.integers(-4, 3),
    )
    if not signed:
        return magnitudes
    return st.builds(lambda value, negative: -value if negative else value, magnitudes, st.booleans())


@st.composite
def accounts(draw: st.DrawFn) -> Account:
    unpriced = draw(st.sets(st.sampled_from(SYMBOLS), max_size=1))
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
    start = draw(decimals())
    snapshot = RiskSnapshot(
        now_ns=NOW,
        positions=draw(st.dictionaries(st.sampled_from(SYMBOLS), decimals(signed=True), max_size=5)),
        last_prices={s: draw(decimals(positive=True)) for s in SYMBOLS if s not in unpriced},
        open_orders=open_orders,
        start_equity=start,
        peak_equity=start + draw(decimals()),
        equity=draw(decimals()),
        recent_order_ns=tuple(sorted(NOW - draw(st.integers(0, 90)) * 1_000_000_000 for _ in range(5))),
        data_age_ns=draw(st.dictionaries(st.sampled_from(SYMBOLS), st.integers(0, 40_000_000_000))),
        controls=ControlState(
            trading_state=draw(st.sampled_from(list(TradingState))),
            state_reason="because",
            paused={s: PauseFlag(scope=s, reason="why", actor="op", since_ns=0) for s in paused},
        ),
    )
    order_type = draw(st.sampled_from([OrderType.MARKET, OrderType.LIMIT, OrderType.STOP]))
    intent = OrderIntent(
        strategy_id=draw(st.sampled_from(["s1", "s2"])),
        symbol=draw(st.sampled_from(SYMBOLS)),
        side=draw(st.sampled_from(list(Side))),
        qty=draw(decimals(positive=True)),
        order_type=order_type,
        limit_price=draw(decimals(positive=True)) if order_type is OrderType.LIMIT else None,
        stop_price=draw(decimals(positive=True)) if order_type is OrderType.STOP else None,
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
    return intent, snapshot, open_orders, limits


def oracle(
    intent: OrderIntent,
    qty: Fraction,
    snap: RiskSnapshot,
    orders: tuple[OpenOrderExposure, ...],
    limits: RiskLimits,
) -> list[bool]:
    """Each check's pass, in order, computed the long way from the rules in ``risk``'s docstring."""
    symbol, buying = intent.symbol, intent.side is Side.BUY

    def position(s: str) -> Fraction:
        return Fraction(snap.positions.get(s, 0))

    def open_qty(s: str, side: Side) -> Fraction:
        return sum(
            (Fraction(o.remaining_qty) for o in orders if o.symbol == s and o.side is side), Fraction(0)
        )

    def exposure(s: str, extra_buy: Fraction, extra_sell: Fraction) -> Fraction:
        up = position(s) + open_qty(s, Side.BUY) + extra_buy
        down = position(s) - open_qty(s, Side.SELL) - extra_sell
        return max(abs(up), abs(down))

    pos = position(symbol)
    reducing = pos != 0 and (pos > 0) != buying and qty + open_qty(symbol, intent.side) <= abs(pos)
    state = snap.controls.trading_state
    trading = state is TradingState.ACTIVE or (state is TradingState.REDUCING and reducing)
    not_paused = ACCOUNT not in snap.controls.paused and intent.strategy_id not in snap.controls.paused
    age = snap.data_age_ns.get(symbol)
    fresh = age is not None and age <= limits.max_data_age_s * 1_000_000_000
    last = snap.last_prices.get(symbol)
    if last is None:
        order_ok = position_ok = gross_ok = False
    else:
        basis = Fraction(intent.limit_price or intent.stop_price or last)
        order_ok = qty * basis <= limits.max_order_notional
        after = pos + open_qty(symbol, Side.BUY) + qty if buying else pos - open_qty(symbol, Side.SELL) - qty
        position_ok = reducing or abs(after) * Fraction(last) <= limits.max_position_notional
        total = exposure(symbol, qty if buying else Fraction(0), Fraction(0) if buying else qty) * Fraction(
            last
        )
        held_or_ordered = set(snap.positions) | {o.symbol for o in orders}
        others = [(s, exposure(s, Fraction(0), Fraction(0))) for s in held_or_ordered - {symbol}]
        if any(q and s not in snap.last_prices for s, q in others):
            gross_ok = False
        else:
            total += sum((q * Fraction(snap.last_prices[s]) for s, q in others if q), Fraction(0))
            gross_ok = reducing or total <= limits.max_gross_exposure
    loss_ok = reducing or snap.start_equity - snap.equity <= limits.daily_loss_limit
    drawdown_ok = reducing or snap.peak_equity - snap.equity <= limits.max_drawdown
    in_window = sum(1 for t in snap.recent_order_ns if t > snap.now_ns - MINUTE)
    rate_ok = 1 + in_window <= limits.max_orders_per_minute
    return [trading, not_paused, fresh, order_ok, position_ok, gross_ok, loss_ok, drawdown_ok, rate_ok]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(accounts())
def test_every_check_passes_exactly_when_the_oracle_says(account: Account) -> None:
    """Nine checks in the documented order, each passing exactly when the plain oracle's rule holds."""
    intent, snapshot, orders, limits = account
    verdict = check(intent, snapshot, limits)
    assert [c.name for c in verdict.checks] == CHECK_ORDER
    assert [c.passed for c in verdict.checks] == oracle(
        intent, Fraction(intent.qty), snapshot, orders, limits
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(accounts())
def test_the_verdict_follows_the_checks(account: Account) -> None:
    """Allowed at full size exactly when every check passes; otherwise the reason names the first
    failure, and an order is allowed only resized, to a smaller qty that passes every check."""
    intent, snapshot, orders, limits = account
    verdict = check(intent, snapshot, limits)
    failed = [c for c in verdict.checks if not c.passed]
    if not failed:
        assert (verdict.allowed, verdict.reason, verdict.resized_qty) == (True, "all checks passed", None)
        return
    assert failed[0].name in verdict.reason
    if not verdict.allowed:
        assert verdict.resized_qty is None
        return
    resized = verdict.resized_qty
    assert limits.resize and resized is not None and 0 < resized < intent.qty
    assert all(oracle(intent, Fraction(resized), snapshot, orders, limits))
    assert {c.name for c in failed} <= {"max_order_notional", "max_position_notional", "max_gross_exposure"}


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(accounts())
def test_is_reducing_matches_the_rule(account: Account) -> None:
    """Opposite the position, and with this side's open orders the order cannot take it past zero."""
    intent, snapshot, orders, _ = account
    pos = snapshot.positions.get(intent.symbol, Decimal(0))
    same_side = sum(
        (o.remaining_qty for o in orders if o.symbol == intent.symbol and o.side is intent.side), Decimal(0)
    )
    expected = pos != 0 and (pos > 0) != (intent.side is Side.BUY) and intent.qty + same_side <= abs(pos)
    assert is_reducing(intent, snapshot) is expected
