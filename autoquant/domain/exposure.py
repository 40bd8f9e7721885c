"""The account's book and its gross exposure: the arithmetic under the risk gate's notional checks.

A symbol's exposure counts open orders in the direction that makes them worst:
``max(|pos + open buys|, |pos - open sells|)``, times the symbol's last price. The gate
(``autoquant.domain.risk``) builds one ``Book`` per ``check`` call and sums the exposure of every symbol but
the order's own, which it prices itself with the new order added.

Written for speed (NamedTuple, hoisted constants, no builtin calls in the loop) because the gate runs
twice per order, at decision time and right before submission.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from autoquant.domain.risk_models import RiskSnapshot
from autoquant.domain.values import Side

_ZERO = Decimal(0)
#: Hoisted: an enum member lookup (``Side.BUY``) costs about as much as a Decimal addition.
_BUY = Side.BUY
#: ``tuple.__new__`` straight: a NamedTuple's generated ``__new__`` is a Python-level call.
_new = tuple.__new__


class Book(NamedTuple):
    """Per-symbol position and open buy/sell quantities, before the new order.

    An open quantity is ``0 + q1 + q2 …`` in the open orders' order, so a looked-up quantity (or the
    ``Decimal(0)`` default) never has a positive exponent: ``pos + buys`` needs no extra ``+ 0`` to print
    the same as ``pos + buys + 0``.
    """

    position: dict[str, Decimal]
    buys: dict[str, Decimal]
    sells: dict[str, Decimal]
    #: Symbols with open orders and no position, each once.
    unheld: list[str]


def book_of(snapshot: RiskSnapshot) -> Book:
    """The snapshot's positions and open orders, summed per symbol and side."""
    positions = snapshot.positions
    buys: dict[str, Decimal] = {}
    sells: dict[str, Decimal] = {}
    unheld: list[str] = []
    for o in snapshot.open_orders:
        symbol = o.symbol
        side = buys if o.side is _BUY else sells
        before = side.get(symbol)
        if before is None:
            side[symbol] = _ZERO + o.remaining_qty
            if symbol not in positions and symbol not in (sells if side is buys else buys):
                unheld.append(symbol)
        else:
            side[symbol] = before + o.remaining_qty
    book: Book = _new(Book, (positions, buys, sells, unheld))
    return book


def gross_exposure(
    book: Book, prices: dict[str, Decimal], symbol: str, start: Decimal
) -> tuple[Decimal, str | None]:
    """``start`` plus the exposure of every symbol but ``symbol``, or the first held or ordered symbol
    without a price.

    A symbol's exposure quantity is ``max(|pos + open buys|, |pos - open sells|)``; zero counts
    nothing. Written out (``b if b > a else a`` is ``max(a, b)``) because a builtin call costs more
    than the Decimal comparison it makes.
    """
    position, buys, sells, unheld = book
    total = start
    for s, pos in position.items():
        if s == symbol:
            continue
        bought = buys.get(s)
        sold = sells.get(s)
        if bought is None and sold is None:
            qty = abs(pos + _ZERO)
        else:
            up = pos + (_ZERO if bought is None else bought)
            down = pos - (_ZERO if sold is None else sold)
            if down >= _ZERO:  # then 0 <= down <= up, and up is never -0: |up| is up
                qty = up
            else:
                up, down = abs(up), abs(down)
                qty = down if down > up else up
        if qty:
            price = prices.get(s)
            if price is None:
                return total, s
            total += qty * price
    for s in unheld:  # ordered, not held: |0 + buys| is buys and |0 - sells| is sells
        if s == symbol:
            continue
        bought = buys.get(s, _ZERO)
        sold = sells.get(s, _ZERO)
        qty = sold if sold > bought else bought
        if qty:
            price = prices.get(s)
            if price is None:
                return total, s
            total += qty * price
    return total, None
