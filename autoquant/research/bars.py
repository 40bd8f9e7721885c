"""Recorded bars for a backtest, streamed: checked in full first, then read again one bar at a time.

Layouts (header required, columns in any order):

* ``timestamp,open,high,low,close,volume`` — one symbol per file, named by the file's stem
  (``GOOG.csv``; ``BTC_USD.csv`` for ``BTC/USD``);
* the same plus ``symbol`` — what alpaca-py's ``get_stock_bars(...).df.to_csv()`` writes
  (``symbol,timestamp,open,high,low,close,volume,trade_count,vwap``; extra columns are ignored).

``--bars`` is one such file or a folder of them. A timestamp is the bar's start (Alpaca's convention),
ISO-8601 with a timezone or epoch seconds; the bar closes ``bar_seconds`` later. Per symbol the
timestamps must strictly increase (an unsorted or duplicated row is refused, naming file and line);
prices are exact decimals (NaN, infinities, high < low refused). The first pass checks everything and
hashes the bytes, so a bad file fails before any ledger exists; the second pass streams, so memory
does not grow with the number of bars.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from autoquant.domain.bars import Bar
from autoquant.marketdata.replay import REQUIRED, parse_timestamp
from autoquant.marketdata.source import MalformedBarFile


@dataclass
class BarSummary:
    """What the checking pass learnt about the bars (within the date window)."""

    files: list[Path]
    sha256: str
    count: int = 0
    symbols: set[str] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None


def bar_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise MalformedBarFile(
                path, 0, "the folder has no *.csv files: give a CSV file or a folder of them"
            )
        return files
    if not path.exists():
        raise MalformedBarFile(path, 0, "no such file or folder: check --bars or [marketdata] csv_path")
    return [path]


def _rows(
    path: Path, bar_seconds: float, start: datetime | None, end: datetime | None, check: bool
) -> Iterator[Bar]:
    """The bars of one file within [start, end] (by bar start), in file order."""
    length = timedelta(seconds=bar_seconds)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise MalformedBarFile(path, 0, f"cannot read: {error.strerror}") from None
    last_open: dict[str, datetime] = {}
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise MalformedBarFile(path, 1, "empty file: a header row is required")
        names = [name.strip().lower() for name in header]
        missing = [name for name in REQUIRED if name not in names]
        if missing:
            raise MalformedBarFile(
                path, 1, f"header lacks {', '.join(missing)}: expected {','.join(REQUIRED)}[,symbol]"
            )
        at = {name: names.index(name) for name in (*REQUIRED, "symbol") if name in names}
        fixed = None if "symbol" in at else path.stem.upper().replace("_", "/")
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            line = reader.line_num
            if len(row) != len(names):
                raise MalformedBarFile(path, line, f"{len(row)} fields, the header has {len(names)}")
            try:
                symbol = fixed or row[at["symbol"]].strip()
                opened = parse_timestamp(row[at["timestamp"]])
                previous = last_open.get(symbol)
                if previous is not None and opened <= previous:
                    problem = "duplicates" if opened == previous else "is before"
                    raise ValueError(
                        f"{symbol} timestamp {opened.isoformat()} {problem} the previous row's: "
                        "bars must be sorted by time, one per timestamp"
                    )
                last_open[symbol] = opened
                if (start is not None and opened < start) or (end is not None and opened > end):
                    continue
                values = [row[at[name]] for name in ("open", "high", "low", "close", "volume")]
                if check:
                    yield Bar(
                        symbol=symbol,
                        open_time=opened,
                        close_time=opened + length,
                        open=values[0],
                        high=values[1],
                        low=values[2],
                        close=values[3],
                        volume=values[4],
                        source="backtest",
                    )
                else:  # checked by the first pass: skip pydantic's validation on the hot path
                    o, h, lo, c, v = (Decimal(value.strip()) for value in values)
                    yield Bar.model_construct(
                        symbol=symbol,
                        open_time=opened,
                        close_time=opened + length,
                        open=o,
                        high=h,
                        low=lo,
                        close=c,
                        volume=v,
                        source="backtest",
                    )
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "row"
                raise MalformedBarFile(path, line, f"{where}: {first['msg']}") from None
            except ValueError as error:
                raise MalformedBarFile(path, line, str(error)) from None


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
        symbols = _symbols_of(file)
        if len(symbols) <= 1:
            streams.append(_rows(file, bar_seconds, start, end, check))
            continue
        for symbol in symbols:
            streams.append(_only(symbol, _rows(file, bar_seconds, start, end, check)))
    if len(streams) == 1:
        yield from streams[0]
        return
    yield from heapq.merge(*streams, key=lambda bar: (bar.close_time, bar.symbol))


def _only(symbol: str, bars: Iterator[Bar]) -> Iterator[Bar]:
    return (bar for bar in bars if bar.symbol == symbol)


def _symbols_of(path: Path) -> list[str]:
    """The symbols of a file with a ``symbol`` column, in order of appearance ([] without one)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None) or []
        names = [name.strip().lower() for name in header]
        if "symbol" not in names:
            return []
        column = names.index("symbol")
        seen: dict[str, None] = {}
        for row in reader:
            if len(row) > column and row[column].strip():
                seen.setdefault(row[column].strip(), None)
    return list(seen)
