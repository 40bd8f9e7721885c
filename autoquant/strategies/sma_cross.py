"""The reference strategy: a long-only simple-moving-average crossover.

Buy ``qty`` when the fast SMA crosses above the slow SMA between the previous bar and this one, if
the strategy is flat and has no order open; sell the whole position when it crosses below while
long. Everything else is a hold with its reason. All arithmetic is Decimal.
"""

from __future__ import annotations

from decimal import Decimal

from autoquant.domain.decisions import Decision
from autoquant.domain.indicators import sma
from autoquant.domain.strategy import Reason, StrategyState, hold, order
from autoquant.domain.values import Side


class SmaCross:
    """Long-only SMA crossover for one symbol. Satisfies ``autoquant.domain.strategy.Strategy``."""

    def __init__(self, *, id: str, symbol: str, fast: int, slow: int, qty: Decimal) -> None:
        if fast <= 0 or slow <= 0:
            raise ValueError(f"fast ({fast}) and slow ({slow}) must both be positive")
        if fast >= slow:
            raise ValueError(f"fast ({fast}) must be less than slow ({slow})")
        if not isinstance(qty, Decimal) or not qty.is_finite() or qty <= 0:
            raise ValueError(f"qty must be a positive Decimal, got {qty!r}")
        self._id = id
        self._symbol = symbol
        self.fast = fast
        self.slow = slow
        self.qty = qty

    @property
    def id(self) -> str:
        return self._id

    @property
    def symbol(self) -> str:
        return self._symbol

    @property
    def warmup(self) -> int:
        # A cross compares this bar's averages with the previous bar's: one bar more than ``slow``.
        return self.slow + 1

    def decide(self, state: StrategyState) -> Decision:
        if state.strategy_id != self._id or state.symbol != self._symbol:
            raise ValueError(
                f"state for {state.strategy_id}/{state.symbol} given to {self._id}/{self._symbol}"
            )
        close = state.bar.close
        if not state.data_fresh:
            return hold(state, Reason.STALE_DATA, {"close": str(close), "data_age_ns": state.data_age_ns})
        if len(state.bars) < self.warmup:
            return hold(state, Reason.WARMING_UP, {"bars": len(state.bars), "needed": self.warmup})
        closes = [bar.close for bar in state.bars[-self.warmup :]]
        fast_now, slow_now = sma(closes, self.fast), sma(closes, self.slow)
        fast_prev, slow_prev = sma(closes, self.fast, end=-1), sma(closes, self.slow, end=-1)
        inputs = {
            "close": str(close),
            "fast_sma": str(fast_now),
            "slow_sma": str(slow_now),
            "prev_fast_sma": str(fast_prev),
            "prev_slow_sma": str(slow_prev),
            "position_qty": str(state.position_qty),
            "open_order_count": state.open_order_count,
        }
        bullish = fast_prev <= slow_prev and fast_now > slow_now
        bearish = fast_prev >= slow_prev and fast_now < slow_now
        if not (bullish or bearish):
            return hold(state, Reason.NO_CROSS, inputs)
        if state.open_order_count > 0:
            return hold(state, Reason.ORDER_OPEN, inputs)
        if bullish:
            if state.position_qty > 0:
                return hold(state, Reason.ALREADY_LONG, inputs)
            if state.position_qty < 0:
                return hold(state, Reason.NOT_FLAT, inputs)
            return order(state, Side.BUY, self.qty, Reason.BULLISH_CROSS, inputs)
        if state.position_qty <= 0:
            return hold(state, Reason.FLAT_NO_POSITION, inputs)
        return order(state, Side.SELL, state.position_qty, Reason.BEARISH_CROSS, inputs)
