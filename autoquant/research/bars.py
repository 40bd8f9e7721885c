"""Recorded bars for a backtest, streamed: checked in full first, then read again one bar at a time.

Layouts (header required, columns in any order):

* ``timestamp,open,high,low,close,volume`` — one symbol per file, named by the file's stem
  (``GOOG.csv``; ``BTC_USD.csv`` for ``BTC/USD``);
* the same plus ``symbol`` — what alpaca-py's ``get_stock_bars(...).df.to_csv()`` writes
  (``symbol,timestamp,open,high,low,close,volume,trade_count,vwap``; extra columns are ignored).

``--bars`` is one such file or a folder of them. A timestamp is the bar's start (Alpaca's convention),
ISO-8601 with a timezone or epoch seconds; the bar closes ``bar_seconds`` later. Per symbol the
timestamps must strictly increase (an unsorted or duplicated row is refused, naming file and line);
prices are exact decimals (NaN, infinities, high < low refused). Files are read by the market data's
one CSV reader (``marketdata.csv_reader``). The first pass checks everything and hashes the bytes, so
a bad file fails before any ledger exists; the second pass streams, so memory does not grow with the
number of bars.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from autoquant.domain.bars import Bar
from autoquant.marketdata.csv_reader import bar_files, read_bars, symbols_of
from autoquant.marketdata.source import MalformedBarFile

__all__ = ["BarSummary", "bar_files", "check_bars", "stream_bars"]

#: The ``source`` of a backtest's bars (as recorded in its ledger).
SOURCE = "backtest"


@dataclass
class BarSummary:
    """What the checking pass learnt about the bars (within the date window)."""

    files: list[Path]
    sha256: str
    count: int = 0
    symbols: set[str] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None


def check_bars(
    path: Path, bar_seconds: float, start: datetime | None = None, end: datetime | None = None
) -> BarSummary:
    """Read every bar once, validating all of it; MalformedBarFile names the first bad line."""
    files = bar_files(path)
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    summary = BarSummary(files=files, sha256=digest.hexdigest())
    for bar in stream_bars(files, bar_seconds, start, end, check=True):
        summary.count += 1
        summary.symbols.add(bar.symbol)
        if summary.first is None:
            summary.first = bar.open_time
        summary.last = bar.open_time
    if summary.count == 0:
        window = "" if start is None and end is None else " between --from and --to"
        raise MalformedBarFile(path, 0, f"no bars{window}: nothing to backtest")
    return summary


def stream_bars(
    files: list[Path],
    bar_seconds: float,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    check: bool = False,
) -> Iterator[Bar]:
    """Every bar of ``files`` in time order (by close time, then symbol), one at a time.

    A file holding several symbols (alpaca-py's layout groups its rows by symbol) is read once per
    symbol, each pass keeping that symbol's rows, so the merge holds one bar per stream in memory.
    """
    streams: list[Iterator[Bar]] = []
    for file in files:
        symbols = symbols_of(file)
        if len(symbols) <= 1:
            streams.append(
                read_bars(file, bar_seconds, start=start, end=end, source=SOURCE, checked=not check)
            )
            continue
        for symbol in symbols:
            every = read_bars(file, bar_seconds, start=start, end=end, source=SOURCE, checked=not check)
            streams.append(_only(symbol, every))
    if len(streams) == 1:
        yield from streams[0]
        return
    yield from heapq.merge(*streams, key=lambda bar: (bar.close_time, bar.symbol))


def _only(symbol: str, bars: Iterator[Bar]) -> Iterator[Bar]:
    return (bar for bar in bars if bar.symbol == symbol)
