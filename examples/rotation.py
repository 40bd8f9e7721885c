"""Momentum rotation over several symbols: an example strategy loaded as ``rotation:Rotation``.

Each bar time (once every symbol has its bar), it ranks the symbols by their return over the last
``lookback`` bars and holds the best one, if that return is positive: it sells what it holds of any
other symbol (market orders) and buys the leader with about ``notional`` of cash (whole shares). With
no positive return it goes to cash. One decision per symbol per bar time; holds say why.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal

from pydantic import BaseModel, ConfigDict, Field

from autoquant.domain.decisions import Decision
from autoquant.domain.strategy import StrategyState, hold, order
from autoquant.domain.values import Side


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    lookback: int = Field(default=20, ge=1)
    notional: Decimal = Field(default=Decimal(5000), gt=0)


class Rotation:
    Params = Params

    def __init__(self, *, id: str, symbols: Sequence[str], params: Params) -> None:
        if len(symbols) < 2:
            raise ValueError("rotation needs at least two symbols")
        self.id = id
        self.symbols = tuple(symbols)
        self.params = params
        self.warmup = params.lookback + 1

    def decide(self, state: StrategyState) -> list[Decision]:
        lookback = self.params.lookback
        if any(len(state.bars[s]) < self.warmup for s in self.symbols):
            return [hold(state, "warming_up", symbol=s) for s in self.symbols]
        if not state.data_fresh:
            return [hold(state, "stale_data", symbol=s) for s in self.symbols]
        momentum = {}
        for symbol in self.symbols:
            closes = state.closes(symbol)
            momentum[symbol] = closes[-1] / closes[-1 - lookback] - 1
        leader = max(self.symbols, key=lambda s: (momentum[s], s))
        target = leader if momentum[leader] > 0 else None
        inputs = {f"momentum_{s}": str(round(m, 6)) for s, m in momentum.items()}
        decisions = []
        for symbol in self.symbols:
            held = state.held(symbol)
            if held.open_order_count:
                decisions.append(hold(state, "order_open", inputs, symbol=symbol))
            elif symbol != target and held.position_qty > 0:
                decisions.append(
                    order(state, Side.SELL, held.position_qty, "rotate_out", inputs, symbol=symbol)
                )
            elif symbol == target and held.position_qty == 0:
                close = state.closes(symbol)[-1]
                qty = (self.params.notional / close).quantize(Decimal(1), ROUND_DOWN)
                if qty > 0:
                    decisions.append(order(state, Side.BUY, qty, "rotate_in", inputs, symbol=symbol))
                else:
                    decisions.append(hold(state, "too_dear", inputs, symbol=symbol))
            else:
                decisions.append(hold(state, "keep", inputs, symbol=symbol))
        return decisions
