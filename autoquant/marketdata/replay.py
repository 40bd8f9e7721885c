"""CSV replay: bars from files, validated in full before the first one is emitted.

Format (documented in the README's market-data section too):

* ``csv_path`` is a file or a directory of ``*.csv`` files.
* A header row is required, naming ``timestamp,open,high,low,close,volume`` in any order, plus an
  optional ``symbol`` column. Without a ``symbol`` column a file holds one symbol, named by the file
  stem with ``_`` for ``/`` (``AAPL.csv``, ``BTC_USD.csv``).
* ``timestamp`` is the bar's **open** time, as Alpaca and most vendors stamp bars: ISO-8601 with a
  timezone (``2024-01-02T14:30:00Z``, ``...+00:00``) or epoch seconds (``1704205800``, fractions
  allowed). A bar closes ``bar_seconds`` after it opens.
* Per symbol, timestamps must strictly increase. Prices are exact decimals; OHLC must be consistent.

Any bad header, row, timestamp, price or ordering raises ``MalformedBarFile`` naming the file and
line, and nothing from any file is emitted: a strategy must never trade on half a file. Replay pace
is configurable: ``pace_s=None`` replays as fast as possible (tests, backtests), ``pace_s=bar_seconds``
one timestamp per bar period (the daemon). With ``restamp=True`` each bar is re-stamped with the
clock as it is emitted (prices and the bar's length kept), so a historical file can drive a live
paper run without every bar being stale.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from autoquant.domain.bars import Bar
from autoquant.domain.clock import Clock
from autoquant.domain.values import from_ns, to_decimal, to_ns
from autoquant.marketdata.source import MalformedBarFile, Sleep

REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")


def parse_timestamp(text: str) -> datetime:
    """ISO-8601 with a timezone, or epoch seconds; raises ValueError saying which rule was broken."""
    text = text.strip()
    try:
        seconds = Decimal(text)
    except ArithmeticError:
        seconds = None
    if seconds is not None and seconds.is_finite():
        ns = int(seconds * 1_000_000_000)
        return from_ns(ns)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither ISO-8601 nor epoch seconds") from None
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone: add 'Z' or an offset such as '+00:00'")
    return moment.astimezone(UTC)


def _symbol_from_stem(path: Path) -> str:
    return path.stem.upper().replace("_", "/")


def load_file(path: Path, bar_seconds: float, source: str = "csv") -> list[Bar]:
    """Every bar of one file, or MalformedBarFile naming the first bad line."""
    length = timedelta(seconds=bar_seconds)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise MalformedBarFile(path, 0, f"cannot read: {error.strerror}") from None
    bars: list[Bar] = []
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
        column = {name: names.index(name) for name in (*REQUIRED, "symbol") if name in names}
        default_symbol = None if "symbol" in column else _symbol_from_stem(path)
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                raise MalformedBarFile(path, line, f"{len(row)} fields, the header has {len(names)}")
            try:
                symbol = default_symbol or row[column["symbol"]].strip()
                open_time = parse_timestamp(row[column["timestamp"]])
                bar = Bar(
                    symbol=symbol,
                    open_time=open_time,
                    close_time=open_time + length,
                    open=to_decimal(row[column["open"]]),
                    high=to_decimal(row[column["high"]]),
                    low=to_decimal(row[column["low"]]),
                    close=to_decimal(row[column["close"]]),
                    volume=to_decimal(row[column["volume"]]),
                    source=source,
                )
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "row"
                raise MalformedBarFile(path, line, f"{where}: {first['msg']}") from None
            except ValueError as error:
                raise MalformedBarFile(path, line, str(error)) from None
            previous = last_open.get(bar.symbol)
            if previous is not None and open_time <= previous:
                raise MalformedBarFile(
                    path,
                    line,
                    f"{bar.symbol} timestamp {open_time.isoformat()} is not after the previous row's",
                )
            last_open[bar.symbol] = open_time
            bars.append(bar)
    return bars


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
