"""The paper server's synthetic prices: one deterministic path per (seed, symbol, bar length), so any
bar of any window, past or live, is the same every time it is asked for.

The daemon has its own market data; this exists so a stand-alone paper server has prices to fill
against, bars to stream, and a history to serve (``GET /v2/stocks/bars``) that agrees with what it
streamed: the live feed publishes ``bar(symbol, k)`` as bar ``k`` closes, and the history is made of
the very same bars.

How the path is made, so that bar ``k`` needs no walk from the beginning of time:

- The log price ``L`` (units of 1e-9, relative to ``START_PRICE``) is fixed at the grid points
  ``k * bar_ns``. Every ``BLOCK`` (2^16) bars a block boundary takes an independent normal value of
  bounded variance, so the price wanders like a random walk at short scales and never drifts off to
  nothing or infinity over years. Between two boundaries, the points are a Brownian bridge built by
  halving: the midpoint of an interval is the mean of its ends plus a normal draw of variance
  ``sigma² * width / 4``. Reaching any point takes 16 halvings; a run of points shares them.
- Every draw is an Irwin–Hall sum of twelve 16-bit integers from a BLAKE2b digest of (seed, symbol,
  node): integer arithmetic only, so the path is the same on every machine. Prices are
  ``START_PRICE * exp(L)`` in ``Decimal`` (correctly rounded), quantized to a cent.
- Bar ``k`` opens at the point ``k`` and closes at ``k + 1``; its high and low reach beyond the
  larger and smaller of the two by the size of two more draws (half a bar's sigma); its volume is
  drawn from 100 to 10 000. ``vw`` is the typical price and ``n`` is volume / 100, as the stream's
  bar messages say.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal

from autoquant.domain.bars import Bar
from autoquant.domain.values import from_ns

CENT = Decimal("0.01")
START_PRICE = Decimal("100.00")
BLOCK_BITS = 16
BLOCK = 1 << BLOCK_BITS
#: The Irwin–Hall sum of twelve uniform 16-bit integers: mean 12 * 32767.5, standard deviation ≈ 2^16.
_IRWIN_MEAN = 393_210
_IRWIN_SD = 65_536
_LOG_UNIT = Decimal("1e-9")
_EXP = Context(prec=34)
_TWELVE = struct.Struct("<12H")
_BAR_DRAWS = struct.Struct("<12H12HI")


@dataclass(frozen=True)
class Levels:
    """A bar in log units: open and close points, the high and low reached, and its volume."""

    open: int
    high: int
    low: int
    close: int
    volume: int


class PricePath:
    """Bars of ``bar_ns`` for any symbol, determined by ``seed``; ``sigma_bps`` is one bar's volatility."""

    def __init__(self, seed: int, bar_ns: int, *, sigma_bps: int = 28) -> None:
        if bar_ns <= 0:
            raise ValueError(f"bar length must be positive, got {bar_ns} ns")
        self.seed = seed
        self.bar_ns = bar_ns
        sigma = sigma_bps * 100_000  # basis points in 1e-9 log units
        self._sigma2 = sigma * sigma
        self._edge_sd = math.isqrt(self._sigma2 * BLOCK // 2)
        self._half_bar_sd = math.isqrt(self._sigma2 // 4)

    # --- the path ----------------------------------------------------------------------------

    def _digest(self, symbol: str, *node: int, size: int = 24) -> bytes:
        key = f"{self.seed}|{symbol}|{'|'.join(map(str, node))}".encode()
        return hashlib.blake2b(key, digest_size=size).digest()

    def _normal(self, symbol: str, *node: int) -> int:
        """A draw with standard deviation ≈ 2^16 (scale it, then divide by ``_IRWIN_SD``)."""
        draws: tuple[int, ...] = _TWELVE.unpack(self._digest(symbol, *node))
        return sum(draws) - _IRWIN_MEAN

    def _edge(self, symbol: str, block: int) -> int:
        return self._normal(symbol, 0, block) * self._edge_sd // _IRWIN_SD

    def levels(self, symbol: str, first: int, last: int) -> list[int]:
        """``L`` at the grid points ``first`` … ``last`` (inclusive)."""
        if last < first:
            return []
        out = [0] * (last - first + 1)
        for block in range(first >> BLOCK_BITS, (last >> BLOCK_BITS) + 1):
            base = block << BLOCK_BITS
            a, b = max(first - base, 0), min(last - base, BLOCK)
            stack = [(0, BLOCK, self._edge(symbol, block), self._edge(symbol, block + 1))]
            while stack:
                lo, hi, at_lo, at_hi = stack.pop()
                if hi < a or lo > b:
                    continue
                if a <= lo <= b:
                    out[base + lo - first] = at_lo
                if a <= hi <= b:
                    out[base + hi - first] = at_hi
                if hi - lo == 1:
                    continue
                mid = (lo + hi) // 2
                spread = math.isqrt(self._sigma2 * (hi - lo) // 4)
                at_mid = (at_lo + at_hi) // 2 + self._normal(symbol, 1, block, mid) * spread // _IRWIN_SD
                stack.append((lo, mid, at_lo, at_mid))
                stack.append((mid, hi, at_mid, at_hi))
        return out

    def bar_levels(self, symbol: str, first: int, count: int) -> list[Levels]:
        """Bars ``first`` … ``first + count - 1`` in log units."""
        points = self.levels(symbol, first, first + count)
        found = []
        for i in range(count):
            draws = _BAR_DRAWS.unpack(self._digest(symbol, 2, first + i, size=52))
            up = abs(sum(draws[:12]) - _IRWIN_MEAN) * self._half_bar_sd // _IRWIN_SD
            down = abs(sum(draws[12:24]) - _IRWIN_MEAN) * self._half_bar_sd // _IRWIN_SD
            opened, closed = points[i], points[i + 1]
            found.append(
                Levels(
                    open=opened,
                    high=max(opened, closed) + up,
                    low=min(opened, closed) - down,
                    close=closed,
                    volume=100 + draws[24] % 9_901,
                )
            )
        return found

    # --- prices and bars -----------------------------------------------------------------------

    @staticmethod
    def price(level: int) -> Decimal:
        """``START_PRICE * exp(level * 1e-9)`` to the cent (never below one cent)."""
        value = START_PRICE * _EXP.exp(Decimal(level) * _LOG_UNIT)
        return max(value.quantize(CENT, rounding=ROUND_HALF_EVEN), CENT)

    def price_at(self, symbol: str, ns: int) -> Decimal:
        """The price at the last grid point at or before ``ns``."""
        k = ns // self.bar_ns
        return self.price(self.levels(symbol, k, k)[0])

    def bar(self, symbol: str, k: int) -> Bar:
        """Bar ``k``: open time ``k * bar_ns``, close time ``(k + 1) * bar_ns``."""
        return self.aggregate(symbol, k, 1)

    def aggregate(self, symbol: str, first: int, count: int, *, source: str = "paper-server") -> Bar:
        """One bar made of bars ``first`` … ``first + count - 1``: first open, last close, the highest
        high, the lowest low, the summed volume."""
        bars = self.bar_levels(symbol, first, count)
        return Bar(
            symbol=symbol,
            open_time=from_ns(first * self.bar_ns),
            close_time=from_ns((first + count) * self.bar_ns),
            open=self.price(bars[0].open),
            high=self.price(max(b.high for b in bars)),
            low=self.price(min(b.low for b in bars)),
            close=self.price(bars[-1].close),
            volume=Decimal(sum(b.volume for b in bars)),
            source=source,
        )

    def bars_closing_at(self, symbols: Sequence[str], close_ns: int) -> list[Bar]:
        """The bar of each symbol that closes at ``close_ns`` (a multiple of ``bar_ns``)."""
        k = close_ns // self.bar_ns - 1
        return [self.bar(symbol, k) for symbol in symbols]
