"""The chaos suites' second strategy: one position in and out through every order type the daemon places.

Flat and no order open: buy ``qty``; long: sell the position. The order type is picked by the bar's close
time (market, limit, stop, stop-limit, each as often), at prices ``offset_bps`` from the close: a limit
buy rests below the close and a limit sell above it, a stop buy triggers above and a stop sell below, a
stop-limit's limit lies ten times ``offset_bps`` past its stop. So limit and stop orders rest a while on
the synthetic walk, some fill and some are still working when the chaos driver replaces them (``autoquant
replace``) or kills the daemon. While an order is open it holds. Loaded by the daemon as ``kind =
"autoquant.chaos.mixed_orders:MixedOrders"`` (the runtime never imports the tooling itself).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict, Field

from autoquant.domain.decisions import Decision
from autoquant.domain.strategy import StrategyState, hold, order
from autoquant.domain.values import OrderType, Side, TradableQuantity, to_ns

TYPES = (OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT)
CENT = Decimal("0.01")


class MixedOrdersParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    qty: TradableQuantity
    offset_bps: Decimal = Field(default=Decimal(5), gt=0, lt=1000)


def prices(
    order_type: OrderType, side: Side, close: Decimal, offset_bps: Decimal
) -> tuple[Decimal | None, Decimal | None]:
    """(limit price, stop price) for ``order_type`` on ``side`` around ``close``."""
    step = close * offset_bps / 10_000
    # A buy's limit rests below the market and its stop waits above; a sell's the other way round.
    away = -1 if side is Side.BUY else 1

    def at(steps: int) -> Decimal:
        return max(CENT, (close + steps * step).quantize(CENT, rounding=ROUND_HALF_UP))

    if order_type is OrderType.LIMIT:
        return at(away), None
    if order_type is OrderType.STOP:
        return None, at(-away)
    if order_type is OrderType.STOP_LIMIT:
        # Its limit lies well past the stop, so a move that gaps through the stop still fills it mostly.
        return at(-10 * away), at(-away)
    return None, None


class MixedOrders:
    """Satisfies ``autoquant.domain.strategy.Strategy`` for one symbol."""

    Params = MixedOrdersParams

    @classmethod
    def from_params(cls, id: str, symbols: Sequence[str], params: MixedOrdersParams) -> MixedOrders:
        if len(symbols) != 1:
            raise ValueError(f"mixed_orders trades exactly one symbol, got {len(symbols)}")
        return cls(id=id, symbol=symbols[0], qty=params.qty, offset_bps=params.offset_bps)

    def __init__(self, *, id: str, symbol: str, qty: Decimal, offset_bps: Decimal = Decimal(5)) -> None:
        self._id = id
        self._symbol = symbol
        self.qty = qty
        self.offset_bps = offset_bps

    @property
    def id(self) -> str:
        return self._id

    @property
    def symbols(self) -> tuple[str, ...]:
        return (self._symbol,)

    @property
    def warmup(self) -> int:
        return 1

    def decide(self, state: StrategyState) -> Decision:
        close = state.bar.close
        inputs = {"close": str(close), "position_qty": str(state.position_qty)}
        if not state.data_fresh:
            return hold(state, "stale_data", inputs)
        if state.open_order_count > 0:
            return hold(state, "order_open", inputs)
        if state.position_qty < 0:
            return hold(state, "short", inputs)
        order_type = TYPES[zlib.crc32(str(to_ns(state.data_time)).encode()) % len(TYPES)]
        side, qty = (Side.BUY, self.qty) if state.position_qty == 0 else (Side.SELL, state.position_qty)
        limit, stop = prices(order_type, side, close, self.offset_bps)
        reason = f"{'enter' if side is Side.BUY else 'exit'}_{order_type.value}"
        return order(
            state, side, qty, reason, inputs, order_type=order_type, limit_price=limit, stop_price=stop
        )
