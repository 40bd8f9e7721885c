"""The one reader of bar CSV files: streaming, validating, one bar at a time.

Both the ``csv`` bar source (``replay.CsvBars``) and ``autoquant backtest`` (``research.bars``) read
through ``read_bars``; only what they do with the bars differs (the source keeps a file's bars in
memory, the backtest streams them twice: a checking pass, then the run).

Format (documented in the README's market-data section too):

* A header row is required, naming ``timestamp,open,high,low,close,volume`` in any order, plus an
  optional ``symbol`` column (what alpaca-py's ``get_stock_bars(...).df.to_csv()`` writes: extra
  columns such as ``trade_count,vwap`` are ignored). Without a ``symbol`` column a file holds one
  symbol, named by the file stem with ``_`` for ``/`` (``AAPL.csv``, ``BTC_USD.csv``).
* ``timestamp`` is the bar's **open** time, as Alpaca and most vendors stamp bars: ISO-8601 with a
  timezone (``2024-01-02T14:30:00Z``, ``...+00:00``) or epoch seconds (``1704205800``, fractions
  allowed). A bar closes ``bar_seconds`` after it opens.
* Per symbol, timestamps must strictly increase: an unsorted or a duplicated row is refused. Prices
  are exact decimals (NaN, infinities, high < low refused).

Any bad header, row, timestamp, price or ordering raises ``MalformedBarFile`` naming the file and
line, in one line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from autoquant.domain.bars import Bar
from autoquant.domain.values import from_ns
from autoquant.marketdata.source import MalformedBarFile

REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")
_PRICES = ("open", "high", "low", "close", "volume")


def parse_timestamp(text: str) -> datetime:
    """ISO-8601 with a timezone, or epoch seconds; raises ValueError saying which rule was broken."""
    text = text.strip()
    if text.isascii() and text.isdigit():  # whole epoch seconds, the usual case: as Decimal would read it
        return from_ns(int(text) * 1_000_000_000)
    try:
        seconds = Decimal(text)
    except ArithmeticError:
        seconds = None
    if seconds is not None and seconds.is_finite():
        return from_ns(int(seconds * 1_000_000_000))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither ISO-8601 nor epoch seconds") from None
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone: add 'Z' or an offset such as '+00:00'")
    return moment.astimezone(UTC)


def symbol_from_stem(path: Path) -> str:
    return path.stem.upper().replace("_", "/")


def read_bars(
    path: Path,
    bar_seconds: float,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    source: str = "csv",
    checked: bool = False,
) -> Iterator[Bar]:
    """The bars of one file within [start, end] (by bar start), in file order, one at a time.

    Every row is checked (its place in time included, also outside the window) and becomes a
    validated ``Bar``; ``checked=True`` says a previous full pass of this reader already accepted
    the file, so the bars are built without pydantic's validation (the hot path of a backtest).
    """
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
        fixed = None if "symbol" in at else symbol_from_stem(path)
        columns = [at[name] for name in _PRICES]
        for row in reader:
            if not row or (not row[0].strip() and all(not cell.strip() for cell in row)):
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
                if checked:
                    o, h, lo, c, v = (Decimal(row[i].strip()) for i in columns)
                    yield Bar.model_construct(
                        symbol=symbol,
                        open_time=opened,
                        close_time=opened + length,
                        open=o,
                        high=h,
                        low=lo,
                        close=c,
                        volume=v,
                        source=source,
                    )
                    continue
                bar = Bar(
                    symbol=symbol,
                    open_time=opened,
                    close_time=opened + length,
                    open=row[columns[0]],
                    high=row[columns[1]],
                    low=row[columns[2]],
                    close=row[columns[3]],
                    volume=row[columns[4]],
                    source=source,
                )
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "row"
                raise MalformedBarFile(path, line, f"{where}: {first['msg']}") from None
            except ValueError as error:
                raise MalformedBarFile(path, line, str(error)) from None
            yield bar  # outside the try: an error raised by the consumer is not this file's


def bar_files(path: Path) -> list[Path]:
    """``path`` itself, or the ``*.csv`` files of the folder ``path``, sorted by name."""
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


def symbols_of(path: Path) -> list[str]:
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
