"""The reference strategy: a long-only simple-moving-average crossover.

Buy ``qty`` when the fast SMA crosses above the slow SMA between the previous bar and this one, if
the strategy is flat and has no order open; sell the whole position when it crosses below while
long. Everything else is a hold with its reason. All arithmetic is Decimal. Its reasons are its own
words (``REASONS``), counted by reason in metrics and reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from autoquant.domain.decisions import Decision
from autoquant.domain.indicators import sma
from autoquant.domain.strategy import StrategyState, hold, order
from autoquant.domain.values import Side, TradableQuantity

WARMING_UP = "warming_up"
NO_CROSS = "no_cross"
STALE_DATA = "stale_data"
ORDER_OPEN = "order_open"
ALREADY_LONG = "already_long"
NOT_FLAT = "not_flat"
FLAT_NO_POSITION = "flat_no_position"
BULLISH_CROSS = "bullish_cross"
BEARISH_CROSS = "bearish_cross"
#: Every reason this strategy gives, holds and orders.
REASONS = (
    WARMING_UP,
    NO_CROSS,
    STALE_DATA,
    ORDER_OPEN,
    ALREADY_LONG,
    NOT_FLAT,
    FLAT_NO_POSITION,
    BULLISH_CROSS,
    BEARISH_CROSS,
)


class SmaCrossParams(BaseModel):
    """``[strategies.params]`` of ``kind = "sma_cross"``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fast: int = Field(gt=0)
    slow: int = Field(gt=0)
    qty: TradableQuantity

    @model_validator(mode="after")
    def _windows(self) -> SmaCrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be less than slow ({self.slow})")
        return self


class SmaCross:
    """Long-only SMA crossover for one symbol. Satisfies ``autoquant.domain.strategy.Strategy``."""

    Params = SmaCrossParams

    @classmethod
    def from_params(cls, id: str, symbols: Sequence[str], params: SmaCrossParams) -> SmaCross:
        """Built by the registry from a ``[[strategies]]`` entry (exactly one symbol)."""
        if len(symbols) != 1:
            raise ValueError(f"sma_cross trades exactly one symbol, got {len(symbols)}")
        return cls(id=id, symbol=symbols[0], fast=params.fast, slow=params.slow, qty=params.qty)

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
    def symbols(self) -> tuple[str, ...]:
        return (self._symbol,)

    @property
    def warmup(self) -> int:
        # A cross compares this bar's averages with the previous bar's: one bar more than ``slow``.
        return self.slow + 1

    def decide(self, state: StrategyState) -> Decision:
        if state.strategy_id != self._id or state.symbols != (self._symbol,):
            raise ValueError(
                f"state for {state.strategy_id}/{state.symbol} given to {self._id}/{self._symbol}"
            )
        close = state.bar.close
        if not state.data_fresh:
            return hold(state, STALE_DATA, {"close": str(close), "data_age_ns": state.data_age_ns})
        bars = state.bars[self._symbol]
        if len(bars) < self.warmup:
            return hold(state, WARMING_UP, {"bars": len(bars), "needed": self.warmup})
        closes = [bar.close for bar in bars[-self.warmup :]]
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
            return hold(state, NO_CROSS, inputs)
        if state.open_order_count > 0:
            return hold(state, ORDER_OPEN, inputs)
        if bullish:
            if state.position_qty > 0:
                return hold(state, ALREADY_LONG, inputs)
            if state.position_qty < 0:
                return hold(state, NOT_FLAT, inputs)
            return order(state, Side.BUY, self.qty, BULLISH_CROSS, inputs)
        if state.position_qty <= 0:
            return hold(state, FLAT_NO_POSITION, inputs)
        return order(state, Side.SELL, state.position_qty, BEARISH_CROSS, inputs)
