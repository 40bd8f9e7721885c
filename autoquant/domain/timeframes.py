"""Alpaca's bar timeframes and the UTC buckets they cut time into.

Grammar, as Alpaca's market-data API takes it: ``[1-59]Min`` (or ``T``), ``[1-23]Hour`` (``H``),
``1Day`` (``D``), ``1Week`` (``W``), ``[1,2,3,4,6,12]Month`` (``M``). Buckets are aligned on UTC:
minutes and hours on multiples of their length since the epoch, days at 00:00, weeks on Mondays,
months on the first (``nMonth`` on months ``1, 1+n, …`` of the year).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from autoquant.domain.values import from_ns, to_ns

NS = 1_000_000_000
DAY_NS = 86_400 * NS
EPOCH_MONDAY_NS = 4 * DAY_NS  # 1970-01-05, the first Monday after the epoch

Unit = Literal["Min", "Hour", "Day", "Week", "Month"]
_UNITS: dict[str, Unit] = {"Min": "Min", "T": "Min", "Hour": "Hour", "H": "Hour", "Day": "Day", "D": "Day"}
_UNITS |= {"Week": "Week", "W": "Week", "Month": "Month", "M": "Month"}
_AMOUNTS: dict[Unit, tuple[int, ...]] = {
    "Min": tuple(range(1, 60)),
    "Hour": tuple(range(1, 24)),
    "Day": (1,),
    "Week": (1,),
    "Month": (1, 2, 3, 4, 6, 12),
}


class TimeframeError(ValueError):
    """Not one of Alpaca's timeframes; the message says which are."""


@dataclass(frozen=True)
class Timeframe:
    amount: int
    unit: Unit

    @classmethod
    def parse(cls, text: str | None) -> Timeframe:
        """``"5Min"`` → ``Timeframe(5, "Min")``; anything else raises ``TimeframeError``."""
        if not text:
            raise TimeframeError("timeframe is required, e.g. 1Min, 5Min, 1Hour, 1Day")
        match = re.fullmatch(r"(\d+)(Min|T|Hour|H|Day|D|Week|W|Month|M)", text)
        if match is None:
            raise TimeframeError(
                f"invalid timeframe {text!r}: use e.g. 1Min, 15Min, 1Hour, 1Day, 1Week, 1Month"
            )
        amount, unit = int(match[1]), _UNITS[match[2]]
        if amount not in _AMOUNTS[unit]:
            raise TimeframeError(f"invalid timeframe {text!r}: {unit} takes {list(_AMOUNTS[unit])}")
        return cls(amount, unit)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def fixed_ns(self) -> int | None:
        """The bucket length, or None for months (which vary)."""
        seconds = {"Min": 60, "Hour": 3600, "Day": 86_400, "Week": 7 * 86_400}.get(self.unit)
        return None if seconds is None else self.amount * seconds * NS

    def bucket_start(self, ns: int) -> int:
        """The start of the bucket holding ``ns``."""
        fixed = self.fixed_ns
        if self.unit == "Week":
            assert fixed is not None
            return ns - (ns - EPOCH_MONDAY_NS) % fixed
        if fixed is not None:
            return ns - ns % fixed
        moment = from_ns(ns)
        month = (moment.month - 1) // self.amount * self.amount + 1
        return to_ns(dt.datetime(moment.year, month, 1, tzinfo=dt.UTC))

    def next_start(self, start_ns: int, steps: int = 1) -> int:
        """The start of the bucket ``steps`` after (or, negative, before) the one at ``start_ns``."""
        fixed = self.fixed_ns
        if fixed is not None:
            return start_ns + steps * fixed
        moment = from_ns(start_ns)
        months = moment.year * 12 + moment.month - 1 + steps * self.amount
        return to_ns(dt.datetime(months // 12, months % 12 + 1, 1, tzinfo=dt.UTC))
