"""Text for a terminal: operator-supplied strings escaped, amounts quantized, times in words.

A pause reason is whatever someone typed (``\\x1b[2J`` clears a screen; a newline forges a line of
output), so every string that came from outside is shown with its control characters escaped
(``safe``). Amounts are shown with a fixed number of places (``money``, ``amount``), times as UTC ISO
(``when``) and durations in seconds, minutes or hours (``duration``), never raw nanoseconds.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

#: Places shown for cash and P&L, and at most for prices and quantities.
MONEY_PLACES = Decimal("0.01")
MAX_PLACES = 6


def safe(value: Any) -> str:
    """``value`` as text with every control character (ESC, newlines, DEL, C1) escaped."""
    text = str(value)
    if all(ch.isprintable() for ch in text):
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    return "".join(out)


def money(value: Any) -> str:
    """A cash amount to the cent (``1234.50``); ``-`` when unknown."""
    if value is None:
        return "-"
    try:
        return str(Decimal(str(value)).quantize(MONEY_PLACES, rounding=ROUND_HALF_EVEN))
    except InvalidOperation:
        return safe(value)


def amount(value: Any) -> str:
    """A price or quantity with at most six places and no trailing zeros (``101.25``, ``0.5``)."""
    if value is None:
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return safe(value)
    if number.as_tuple().exponent < -MAX_PLACES:  # type: ignore[operator]
        number = number.quantize(Decimal(1).scaleb(-MAX_PLACES), rounding=ROUND_HALF_EVEN)
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def order_size(qty: Any, notional: Any) -> str:
    """An order's size as a person reads it: its qty, or a notional order's dollars (``$250.00
    notional``) while no qty is known."""
    if notional is not None and qty in (None, "0", 0):
        return f"${money(notional)} notional"
    return "" if qty is None else str(qty)


def duration(ns: int | float) -> str:
    """A duration in words a person reads: ``850 ms``, ``4.8 s``, ``3 min 20 s``, ``2 h 5 min``."""
    seconds = float(ns) / 1e9
    if abs(seconds) < 1:
        return f"{seconds * 1000:.0f} ms"
    if abs(seconds) < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
