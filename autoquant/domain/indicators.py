"""Indicators over exact prices. Pure functions on Decimal sequences, newest value last."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext

#: Enough digits that an average of 34-digit prices over any realistic window is exact or
#: correctly rounded, and comparisons between two averages are decided by the data, not rounding.
_PRECISION = 40


def sma(values: Sequence[Decimal], window: int, *, end: int | None = None) -> Decimal:
    """Simple moving average of the ``window`` values ending just before index ``end``.

    ``end=None`` means the newest value is included; ``end=-1`` is the average one step earlier.
    Raises ValueError when fewer than ``window`` values are available, so a caller cannot mistake
    a short history for a real average.
    """
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    stop = len(values) if end is None else (end if end >= 0 else len(values) + end)
    start = stop - window
    if start < 0 or stop > len(values):
        raise ValueError(f"need {window} values ending at {stop}, have {len(values)}")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        total = sum(values[start:stop], Decimal(0))
        return total / window
