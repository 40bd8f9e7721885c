"""Positions as a pure fold over fills: signed quantity, average entry price, realized P&L.

Average-cost accounting, as Alpaca reports ``avg_entry_price``. Quantities and realized P&L on whole
closes are exact; an average price that does not terminate (1/3) carries 34 significant digits.
A fill that crosses zero closes the old side and opens the new one at the fill price.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, localcontext

from pydantic import BaseModel, ConfigDict

from autoquant.domain.fills import Fill
from autoquant.domain.values import Money, Side, Symbol

_ZERO = Decimal(0)


class Position(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: Symbol
    qty: Money = _ZERO
    avg_price: Money = _ZERO
    realized_pnl: Money = _ZERO
    fees: Money = _ZERO

    @property
    def is_flat(self) -> bool:
        return self.qty == 0

    def unrealized_pnl(self, price: Decimal) -> Decimal:
        return (price - self.avg_price) * self.qty

    def market_value(self, price: Decimal) -> Decimal:
        return price * self.qty


def apply_fill(position: Position, fill: Fill) -> Position:
    """The position after one fill."""
    if fill.symbol != position.symbol:
        raise ValueError(f"fill for {fill.symbol} applied to position in {position.symbol}")
    delta = fill.qty if fill.side is Side.BUY else -fill.qty
    qty, avg, realized = position.qty, position.avg_price, position.realized_pnl
    with localcontext() as ctx:
        ctx.prec = 34
        if qty == 0 or (qty > 0) == (delta > 0):
            new_qty = qty + delta
            avg = (avg * abs(qty) + fill.price * fill.qty) / abs(new_qty)
        else:
            closing = min(abs(delta), abs(qty))
            direction = 1 if qty > 0 else -1
            realized += (fill.price - avg) * closing * direction
            new_qty = qty + delta
            if new_qty == 0:
                avg = _ZERO
            elif (new_qty > 0) != (qty > 0):
                avg = fill.price
    return Position(
        symbol=position.symbol,
        qty=new_qty,
        avg_price=avg.normalize() if avg else _ZERO,
        realized_pnl=realized,
        fees=position.fees + fill.fee,
    )


def fold(symbol: str, fills: Iterable[Fill]) -> Position:
    position = Position(symbol=symbol)
    for fill in fills:
        position = apply_fill(position, fill)
    return position
