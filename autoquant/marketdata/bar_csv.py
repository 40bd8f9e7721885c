"""Bars written as the CSV ``autoquant backtest`` (and the ``csv`` bar source) reads.

The layout is what alpaca-py's ``get_stock_bars(...).df.to_csv()`` writes, so files from either
are interchangeable: ``symbol,timestamp,open,high,low,close,volume,trade_count,vwap``, one row per
bar, sorted by symbol then time, ``timestamp`` the bar's open time as pandas writes it
(``2026-11-02 10:00:00+00:00``). Numbers are exact decimals (no float noise); an unknown trade count
or VWAP is an empty cell. The file is written to a temporary name and renamed into place, so a
reader never sees half a file.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from autoquant.marketdata.alpaca_history import HistoricalBar

HEADER = ("symbol", "timestamp", "open", "high", "low", "close", "volume", "trade_count", "vwap")


def write_bars_csv(path: Path, bars: Sequence[HistoricalBar]) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for item in bars:
            bar = item.bar
            writer.writerow(
                (
                    bar.symbol,
                    bar.open_time.isoformat(sep=" "),
                    bar.open,
                    bar.high,
                    bar.low,
                    bar.close,
                    bar.volume,
                    "" if item.trade_count is None else item.trade_count,
                    "" if item.vwap is None else item.vwap,
                )
            )
    os.replace(temporary, path)
