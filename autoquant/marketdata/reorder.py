"""The reorder buffer: bars out, per symbol, in strictly increasing close time, each at most once.

Streams deliver duplicates (a reconnect replays the last bar) and bars out of order. The buffer
releases a bar at once when it follows the last released bar by no more than ``1.5 x interval``.
When a bar arrives *ahead* of that (something is missing), it waits: a late bar that fills the hole
is released first and the waiting bars after it, in order. If the hole is still open when more than
``window`` bars wait, or when the oldest waiting bar has waited ``window x interval`` by the clock,
the buffer gives up on the missing bars: it reports a ``DataGap`` (kind ``missing``) and releases the
waiting bars. A bar older than what was already released cannot be put back in order; it is dropped
and reported as a ``DataGap`` of kind ``late``. Duplicates (same symbol and close time as a released
or waiting bar) are dropped silently and counted.

The first bar of a symbol (and the first after a reported hole) anchors the sequence and is released
at once: waiting for a possibly earlier bar would delay every start by the whole window. A bar older
than the anchor is then ``late``.

A ``DataGap`` is for the market-data worker to turn into an incident. ``window = 0`` releases every
bar that is newer than the last one at once and still reports holes and late bars.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from pydantic import BaseModel, ConfigDict

from autoquant.domain.bars import Bar
from autoquant.domain.values import iso_utc


class DataGap(BaseModel):
    """Bars for ``symbol`` between ``after_ns`` and ``before_ns`` (exclusive) were not delivered in time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    kind: Literal["missing", "late"]
    #: Close time (ns) of the last bar released before the hole, or of the late bar itself.
    after_ns: int
    #: Close time (ns) of the first bar released after the hole (for ``late``: the newest released).
    before_ns: int
    #: Bar intervals the hole spans, beyond the expected one (0 for ``late``).
    missing_bars: int

    def describe(self) -> str:
        if self.kind == "late":
            return (
                f"{self.symbol}: bar closing at {iso_utc(self.after_ns)} arrived after the one closing at "
                f"{iso_utc(self.before_ns)} was released"
            )
        return (
            f"{self.symbol}: about {self.missing_bars} bar(s) missing "
            f"between {iso_utc(self.after_ns)} and {iso_utc(self.before_ns)}"
        )


Released = Bar | DataGap


class _SymbolBuffer:
    __slots__ = ("last_ns", "recent", "since_ns", "waiting")

    def __init__(self, remember: int) -> None:
        self.last_ns: int | None = None
        #: Close times released lately, to tell a re-delivered old bar (duplicate) from a late one.
        self.recent: deque[int] = deque(maxlen=remember)
        self.waiting: dict[int, Bar] = {}
        #: When (clock ns) the oldest waiting bar started waiting.
        self.since_ns = 0


class ReorderBuffer:
    """Per-symbol reordering with a bounded wait. Not thread-safe; one owner (the market-data worker)."""

    def __init__(self, *, window: int, interval_s: float, report_holes: bool = True) -> None:
        if window < 0:
            raise ValueError(f"reorder_window must not be negative, got {window}")
        if interval_s <= 0:
            raise ValueError(f"interval must be positive, got {interval_s}")
        self._window = window
        #: False for recorded bars (a backtest): a hole there is a closed market, not a lost bar.
        self._report_holes = report_holes
        self._interval_ns = int(interval_s * 1_000_000_000)
        self._tolerance_ns = self._interval_ns * 3 // 2
        self._symbols: dict[str, _SymbolBuffer] = {}
        self.duplicates = 0

    def push(self, bar: Bar, now_ns: int) -> list[Released]:
        """Take one bar; return what can be released now, in order (bars and gaps)."""
        buf = self._symbols.get(bar.symbol)
        if buf is None:
            buf = self._symbols[bar.symbol] = _SymbolBuffer(2 * self._window + 8)
        close_ns = bar.close_ns
        if buf.last_ns is not None and close_ns <= buf.last_ns:
            if close_ns in buf.recent:
                self.duplicates += 1
                return []
            return [
                DataGap(
                    symbol=bar.symbol, kind="late", after_ns=close_ns, before_ns=buf.last_ns, missing_bars=0
                )
            ]
        if close_ns in buf.waiting:
            self.duplicates += 1
            return []
        if not buf.waiting:
            buf.since_ns = now_ns
        buf.waiting[close_ns] = bar
        out: list[Released] = []
        self._drain(buf, out)
        if len(buf.waiting) > self._window:
            self._give_up(buf, out)
        else:
            self._expire(buf, now_ns, out)
        return out

    def poll(self, now_ns: int) -> list[Released]:
        """Release bars that waited too long for a missing bar; call it periodically."""
        out: list[Released] = []
        for buf in self._symbols.values():
            self._expire(buf, now_ns, out)
        return out

    def waiting(self, symbol: str) -> int:
        buf = self._symbols.get(symbol)
        return 0 if buf is None else len(buf.waiting)

    def _expire(self, buf: _SymbolBuffer, now_ns: int, out: list[Released]) -> None:
        if buf.waiting and now_ns - buf.since_ns >= self._window * self._interval_ns:
            self._give_up(buf, out)

    def _drain(self, buf: _SymbolBuffer, out: list[Released]) -> None:
        """Release waiting bars while each follows the last released one without a hole."""
        while buf.waiting:
            oldest = min(buf.waiting)
            if buf.last_ns is not None and oldest - buf.last_ns > self._tolerance_ns:
                return
            out.append(buf.waiting.pop(oldest))
            buf.last_ns = oldest
            buf.recent.append(oldest)

    def _give_up(self, buf: _SymbolBuffer, out: list[Released]) -> None:
        """Stop waiting for the hole: report it and release everything that waited, in order."""
        first = min(buf.waiting)
        symbol = buf.waiting[first].symbol
        if buf.last_ns is not None and self._report_holes:
            missing = max(1, (first - buf.last_ns) // self._interval_ns - 1)
            out.append(
                DataGap(
                    symbol=symbol, kind="missing", after_ns=buf.last_ns, before_ns=first, missing_bars=missing
                )
            )
        buf.last_ns = None  # the next bar starts a new run
        self._drain(buf, out)
        if buf.waiting:  # further holes among the waiting bars: report each, release all
            self._give_up(buf, out)
