"""The pure risk check's latency on a realistic account: a few symbols held, some orders open.

``autoquant.domain.risk.check`` runs twice per order (at decision time and again right before
submission), so its cost is paid twice on the tick-to-submit path. Each call is timed on its own with
``perf_counter_ns``, the collector paused, after a warm-up.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

from autoquant.bench.common import Sizes, gc_paused, percentile, progress
from autoquant.domain.decisions import OrderIntent
from autoquant.domain.risk import OpenOrderExposure, RiskLimits, RiskSnapshot, check
from autoquant.domain.values import Side

_NOW_NS = 1_704_205_800 * 1_000_000_000
_PRICES = {
    "AAPL": Decimal("187.25"),
    "MSFT": Decimal("374.10"),
    "NVDA": Decimal("495.22"),
    "SPY": Decimal("472.65"),
    "BTC/USD": Decimal("42350.5"),
}


def realistic_snapshot() -> RiskSnapshot:
    """Five symbols with prices and fresh data, four positions, six open orders, a busy minute."""
    open_orders = (
        OpenOrderExposure(symbol="AAPL", side=Side.BUY, remaining_qty=Decimal(10), price=_PRICES["AAPL"]),
        OpenOrderExposure(symbol="AAPL", side=Side.SELL, remaining_qty=Decimal(5), price=Decimal("190")),
        OpenOrderExposure(symbol="MSFT", side=Side.BUY, remaining_qty=Decimal(3), price=_PRICES["MSFT"]),
        OpenOrderExposure(symbol="NVDA", side=Side.SELL, remaining_qty=Decimal(2), price=_PRICES["NVDA"]),
        OpenOrderExposure(symbol="SPY", side=Side.BUY, remaining_qty=Decimal(4), price=Decimal("470")),
        OpenOrderExposure(
            symbol="BTC/USD", side=Side.BUY, remaining_qty=Decimal("0.05"), price=_PRICES["BTC/USD"]
        ),
    )
    return RiskSnapshot(
        now_ns=_NOW_NS,
        positions={"AAPL": Decimal(20), "MSFT": Decimal(8), "NVDA": Decimal(6), "BTC/USD": Decimal("0.1")},
        last_prices=dict(_PRICES),
        open_orders=open_orders,
        start_equity=Decimal("100000"),
        peak_equity=Decimal("100850.25"),
        equity=Decimal("100412.80"),
        recent_order_ns=tuple(_NOW_NS - i * 1_500_000_000 for i in reversed(range(20))),  # ascending
        data_age_ns={symbol: 400_000_000 + i * 1_000_000 for i, symbol in enumerate(_PRICES)},
    )


def realistic_intent() -> OrderIntent:
    return OrderIntent(
        strategy_id="sma-aapl",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(10),
        reason="bullish_cross",
        decision_id="d-bench",
        data_time=datetime(2024, 1, 2, 14, 30, tzinfo=UTC),
    )


def run(sizes: Sizes) -> dict[str, object]:
    snapshot, intent, limits = realistic_snapshot(), realistic_intent(), RiskLimits()
    verdict = check(intent, snapshot, limits)
    if not verdict.allowed:
        raise AssertionError(f"the bench's snapshot should allow the order: {verdict.reason}")
    for _ in range(min(2_000, sizes.risk_iterations)):
        check(intent, snapshot, limits)
    samples = [0] * sizes.risk_iterations
    clock = time.perf_counter_ns
    with gc_paused():
        for i in range(sizes.risk_iterations):
            start = clock()
            check(intent, snapshot, limits)
            samples[i] = clock() - start
    p50, p99 = percentile(samples, 0.50) / 1000, percentile(samples, 0.99) / 1000
    fastest = min(samples) / 1000
    progress(
        f"risk check: p50 {p50:.1f} µs, p99 {p99:.1f} µs, fastest {fastest:.1f} µs"
        f" over {sizes.risk_iterations} calls"
    )
    # The fastest call is the function's own cost; the distance from it to p99 is the machine's jitter.
    return {
        "risk_check_p50_us": round(p50, 2),
        "risk_check_p99_us": round(p99, 2),
        "risk_check_min_us": round(fastest, 2),
    }
