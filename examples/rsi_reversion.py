"""RSI mean reversion with limit orders: an example strategy loaded as ``rsi_reversion:RsiReversion``.

When the ``period``-bar RSI of the closes falls below ``oversold`` and the strategy is flat with no
order open, it bids ``qty`` with a day limit order ``entry_discount_pct`` below the close (filled only
if the next session trades down to it, or opens below it). When long and the RSI rises above
``exit_above``, it offers the position with a day limit order ``exit_premium_pct`` above the close.
Everything else is a hold, with the strategy's own reason. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict, Field

from autoquant.domain.decisions import Decision
from autoquant.domain.strategy import StrategyState, hold, order
from autoquant.domain.values import OrderType, Side

CENT = Decimal("0.01")


class Params(BaseModel):
    """``[strategies.params]``: validated when the config is loaded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    period: int = Field(default=14, ge=2)
    oversold: Decimal = Field(default=Decimal(30), gt=0, lt=100)
    exit_above: Decimal = Field(default=Decimal(55), gt=0, lt=100)
    entry_discount_pct: Decimal = Field(default=Decimal("0.5"), ge=0, lt=100)
    exit_premium_pct: Decimal = Field(default=Decimal("0.5"), ge=0)
    qty: Decimal = Field(gt=0)


def rsi(closes: Sequence[Decimal], period: int) -> Decimal:
    """Wilder's RSI over the last ``period`` changes (simple averages), 0..100."""
    changes = [b - a for a, b in zip(closes[-period - 1 : -1], closes[-period:], strict=True)]
    gain = sum((c for c in changes if c > 0), Decimal(0)) / period
    loss = sum((-c for c in changes if c < 0), Decimal(0)) / period
    if loss == 0:
        return Decimal(100)
    return Decimal(100) - Decimal(100) / (1 + gain / loss)


class RsiReversion:
    Params = Params

    def __init__(self, *, id: str, symbols: Sequence[str], params: Params) -> None:
        if len(symbols) != 1:
            raise ValueError("rsi_reversion trades exactly one symbol")
        self.id = id
        self.symbols = tuple(symbols)
        self.params = params
        self.warmup = params.period + 1

    def decide(self, state: StrategyState) -> Decision:
        p = self.params
        closes = state.closes()
        if len(closes) < self.warmup:
            return hold(state, "warming_up", {"bars": len(closes)})
        if not state.data_fresh:
            return hold(state, "stale_data")
        value = rsi(closes, p.period)
        close = closes[-1]
        inputs = {"rsi": str(value.quantize(CENT)), "close": str(close)}
        if state.open_order_count:
            return hold(state, "order_open", inputs)
        if state.position_qty == 0 and value < p.oversold:
            limit = (close * (1 - p.entry_discount_pct / 100)).quantize(CENT, ROUND_HALF_UP)
            return order(
                state, Side.BUY, p.qty, "oversold", inputs, order_type=OrderType.LIMIT, limit_price=limit
            )
        if state.position_qty > 0 and value > p.exit_above:
            limit = (close * (1 + p.exit_premium_pct / 100)).quantize(CENT, ROUND_HALF_UP)
            return order(
                state,
                Side.SELL,
                state.position_qty,
                "recovered",
                inputs,
                order_type=OrderType.LIMIT,
                limit_price=limit,
            )
        return hold(state, "waiting", inputs)
