"""The account's exposure: the arithmetic under the risk gate's position and gross-exposure checks.

A symbol's exposure counts open orders in the direction that makes them worst:
``max(|pos + open buys|, |pos - open sells|)``, times the symbol's last price. The gate
(``autoquant.domain.risk``) sums the exposure of every symbol but the order's own, which it prices
itself with the new order added.
"""

from __future__ import annotations

from decimal import Decimal

from autoquant.domain.risk_models import RiskSnapshot

ZERO = Decimal(0)


def exposure_qty(position: Decimal, open_buys: Decimal, open_sells: Decimal) -> Decimal:
    """``max(|pos + open buys|, |pos - open sells|)``: the largest position the open orders could leave.

    Open quantities are never negative, so ``pos + buys >= pos - sells`` and the larger absolute value
    is ``max(pos + buys, sells - pos)`` (a tie gives ``pos + buys``, as the formula does). Written as a
    conditional, not ``max()``: the builtin costs three times the comparison on the gate's path.
    """
    up, down = position + open_buys, open_sells - position
    return up if up >= down else down


def gross_exposure(snapshot: RiskSnapshot, symbol: str, start: Decimal) -> tuple[Decimal, str | None]:
    """``start`` plus the exposure of every symbol but ``symbol``, or the first held or ordered symbol
    without a price. A symbol with nothing held or open counts nothing, priced or not.

    The symbols are walked held ones first, then those only ordered (the keys of the three dicts
    merged, in that order); ``exposure_qty`` is written out in the loop: it runs once per held or
    ordered symbol, on every check, and the call would cost about as much as the arithmetic.
    """
    positions, buys, sells = snapshot.positions, snapshot.open_buys, snapshot.open_sells
    prices = snapshot.last_prices
    total = start
    for other in {**positions, **buys, **sells}:
        if other == symbol:
            continue
        position = positions.get(other, ZERO)
        up, down = position + buys.get(other, ZERO), sells.get(other, ZERO) - position
        qty = up if up >= down else down
        if not qty:
            continue
        price = prices.get(other)
        if price is None:
            return total, other
        total += qty * price
    return total, None
