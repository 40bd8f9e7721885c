"""CSV replay: bars from files, validated in full before the first one is emitted.

``csv_path`` is a file or a directory of ``*.csv`` files, in the format ``csv_reader`` documents
(and reads: the backtest reads through the same reader).

Any bad header, row, timestamp, price or ordering raises ``MalformedBarFile`` naming the file and
line, and nothing from any file is emitted: a strategy must never trade on half a file. Replay pace
is configurable: ``pace_s=None`` replays as fast as possible (tests, backtests), ``pace_s=bar_seconds``
one timestamp per bar period (the daemon). With ``restamp=True`` each bar is re-stamped with the
clock as it is emitted (prices and the bar's length kept), so a historical file can drive a live
paper run without every bar being stale.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from datetime import datetime
from pathlib import Path

from autoquant.domain.bars import Bar
from autoquant.domain.clock import Clock
from autoquant.domain.values import from_ns, to_ns
from autoquant.marketdata.csv_reader import read_bars
from autoquant.marketdata.source import MalformedBarFile, Sleep

__all__ = ["CsvBars", "load", "load_file"]


def load_file(path: Path, bar_seconds: float, source: str = "csv") -> list[Bar]:
    """Every bar of one file, or MalformedBarFile naming the first bad line (nothing is returned)."""
    return list(read_bars(path, bar_seconds, source=source))


def load(path: Path, bar_seconds: float) -> list[Bar]:
    """All bars of a file or directory, validated, in time order (stable across symbols)."""
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise MalformedBarFile(path, 0, "directory has no *.csv files")
    bars = [bar for file in files for bar in load_file(file, bar_seconds)]
    bars.sort(key=lambda bar: bar.close_time)
    return bars


class CsvBars:
    """Replays validated bars. Load errors surface from ``load()`` or the first ``__anext__``."""

    def __init__(
        self,
        path: Path,
        *,
        bar_seconds: float,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        pace_s: float | None = None,
        restamp: bool = False,
        symbols: Collection[str] | None = None,
    ) -> None:
        self._path = path
        self._bar_seconds = bar_seconds
        self._clock = clock
        self._sleep = sleep
        self._pace_s = pace_s
        self._restamp = restamp
        self._symbols = None if symbols is None else frozenset(symbols)
        self._bars: list[Bar] | None = None
        self._closed = False

    async def load(self) -> list[Bar]:
        """Read and validate everything (off the event loop); idempotent."""
        if self._bars is None:
            bars = await asyncio.to_thread(load, self._path, self._bar_seconds)
            if self._symbols is not None:
                bars = [bar for bar in bars if bar.symbol in self._symbols]
            self._bars = bars
        return self._bars

    async def __aiter__(self) -> AsyncIterator[Bar]:
        bars = await self.load()
        previous: datetime | None = None
        last_stamp = 0
        for bar in bars:
            if self._closed:
                return
            if bar.close_time != previous:
                if previous is not None:
                    await (self._sleep(self._pace_s) if self._pace_s else self._sleep(0))
                previous = bar.close_time
                if self._restamp:
                    last_stamp = max(self._clock.now_ns() // 1_000 * 1_000, last_stamp + 1_000)
            yield self._stamped(bar, last_stamp) if self._restamp else bar

    def _stamped(self, bar: Bar, close_ns: int) -> Bar:
        length = to_ns(bar.close_time) - to_ns(bar.open_time)
        return bar.model_copy(
            update={"close_time": from_ns(close_ns), "open_time": from_ns(close_ns - length)}
        )

    async def close(self) -> None:
        self._closed = True
