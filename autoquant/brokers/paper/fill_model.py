"""How the paper exchange prices and sizes a fill: slippage, fees, partial fills, deterministic chance.

Pure functions over ``Decimal``; no clock, no I/O. Randomness is not ``random``'s global state: each
order's coin flips are SHA-256 of (seed, client order id, purpose), so the same order under the same
seed fills the same way after any number of restarts.
"""

from __future__ import annotations

import hashlib
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from autoquant.domain.values import Side

#: Fill prices are quantized to this (a hundredth of a cent covers stocks and most crypto pairs).
PRICE_QUANTUM = Decimal("0.0001")
#: Fees are quantized to this, rounding half up.
FEE_QUANTUM = Decimal("0.0001")
_BPS = Decimal(10_000)


def unit_draw(seed: int, client_order_id: str, purpose: str) -> int:
    """A deterministic draw in [0, 2**64) for one purpose of one order."""
    digest = hashlib.sha256(f"paper-v1\x1f{seed}\x1f{client_order_id}\x1f{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def chance(seed: int, client_order_id: str, purpose: str, probability: float) -> bool:
    """True with ``probability``, decided by the order's identity alone."""
    if probability <= 0:
        return False
    if probability >= 1:
        return True
    return unit_draw(seed, client_order_id, purpose) < int(probability * 2**64)


def slipped_price(price: Decimal, side: Side, slippage_bps: Decimal) -> Decimal:
    """The price a market taker gets: buys pay up, sells receive less."""
    factor = Decimal(1) + side.sign * slippage_bps / _BPS
    return (price * factor).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)


def is_marketable(side: Side, price: Decimal, limit_price: Decimal | None) -> bool:
    """A limit buy trades at or below its limit, a limit sell at or above; a market order always."""
    if limit_price is None:
        return True
    return price <= limit_price if side is Side.BUY else price >= limit_price


def fill_price(side: Side, price: Decimal, limit_price: Decimal | None, slippage_bps: Decimal) -> Decimal:
    """The execution price: the slipped price, never worse than the limit."""
    slipped = slipped_price(price, side, slippage_bps)
    if limit_price is None:
        return slipped
    return min(slipped, limit_price) if side is Side.BUY else max(slipped, limit_price)


def fee_for(qty: Decimal, price: Decimal, fee_bps: Decimal) -> Decimal:
    """The fee on one execution: ``fee_bps`` of its notional."""
    return (qty * price * fee_bps / _BPS).quantize(FEE_QUANTUM, rounding=ROUND_HALF_UP)


def cost_estimate(qty: Decimal, price: Decimal, slippage_bps: Decimal, fee_bps: Decimal) -> Decimal:
    """What buying ``qty`` at ``price`` may cost with slippage and fee: the buying-power check."""
    slipped = slipped_price(price, Side.BUY, slippage_bps)
    return qty * slipped + fee_for(qty, slipped, fee_bps)


def partial_qty(qty: Decimal, seed: int, client_order_id: str) -> Decimal | None:
    """The size of a first partial fill (20–80 % of ``qty`` in its own increment), or None when
    the quantity cannot be split (one share, or one unit of its smallest digit)."""
    exponent = qty.as_tuple().exponent
    assert isinstance(exponent, int)  # qty is finite: validated by the order request
    quantum = Decimal(1).scaleb(min(exponent, 0))
    percent = 20 + unit_draw(seed, client_order_id, "partial-size") % 61
    part = (qty * percent / 100).quantize(quantum, rounding=ROUND_DOWN)
    if part <= 0 or part >= qty:
        return None
    return part


QTY_QUANTUM = Decimal("0.000000001")


def notional_qty(notional: Decimal, price: Decimal, position: Decimal | None) -> Decimal | None:
    """What a notional order buys or sells at ``price``: the amount's worth, rounded down to 9 decimals
    (Alpaca's precision), a sell no more than the ``position``; None when that is nothing."""
    qty = (notional / price).quantize(QTY_QUANTUM, rounding=ROUND_DOWN)
    if position is not None:
        qty = min(qty, position)
    return qty if qty > 0 else None
