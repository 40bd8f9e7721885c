"""Freshness: how old is the newest bar of each symbol, by the clock.

The strategy worker holds (``stale_data``) and the risk gate refuses when a symbol's data is older
than ``max_data_age_s`` (inclusive: exactly that old is still fresh). A symbol never seen has no age
and is never fresh.
"""

from __future__ import annotations

from collections.abc import Iterable

from autoquant.domain.bars import Bar
from autoquant.domain.clock import Clock


class FreshnessTracker:
    def __init__(self, clock: Clock, *, max_data_age_s: float, symbols: Iterable[str] = ()) -> None:
        if max_data_age_s <= 0:
            raise ValueError(f"max_data_age_s must be positive, got {max_data_age_s}")
        self._clock = clock
        self.max_age_ns = int(max_data_age_s * 1_000_000_000)
        self._last_ns: dict[str, int | None] = dict.fromkeys(symbols)

    def observe(self, bar: Bar) -> None:
        """Record a released bar; an older bar never makes a symbol look staler."""
        close_ns = bar.close_ns
        last = self._last_ns.get(bar.symbol)
        if last is None or close_ns > last:
            self._last_ns[bar.symbol] = close_ns

    def last_bar_ns(self, symbol: str) -> int | None:
        return self._last_ns.get(symbol)

    def age_ns(self, symbol: str) -> int | None:
        """Nanoseconds since the newest bar closed (never negative), or None if none was seen."""
        last = self._last_ns.get(symbol)
        return None if last is None else max(0, self._clock.now_ns() - last)

    def is_fresh(self, symbol: str) -> bool:
        age = self.age_ns(symbol)
        return age is not None and age <= self.max_age_ns

    def ages_ns(self) -> dict[str, int]:
        """Every seen symbol's age, as ``RiskSnapshot.data_age_ns`` wants it."""
        now = self._clock.now_ns()
        return {symbol: max(0, now - last) for symbol, last in self._last_ns.items() if last is not None}

    def stale_symbols(self) -> list[str]:
        """Configured or seen symbols that are not fresh now (never-seen ones included)."""
        return [symbol for symbol in self._last_ns if not self.is_fresh(symbol)]
