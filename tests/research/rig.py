"""Helpers for the research tests: real bar files from a package's data, configs, the CLI in-process."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autoquant.operator.cli import main

HEADER = "timestamp,open,high,low,close,volume\n"


def goog_rows() -> list[tuple[str, ...]]:
    """Google's daily bars 2004-2008 as matplotlib ships them (``goog.npz``), prices to the cent."""
    from matplotlib import cbook

    sample: Any = cbook.get_sample_data("goog.npz")  # an NpzFile for .npz files
    data = sample["price_data"]
    return [
        (
            f"{row['date']}T00:00:00Z",
            f"{float(row['open']):.2f}",
            f"{float(row['high']):.2f}",
            f"{float(row['low']):.2f}",
            f"{float(row['close']):.2f}",
            str(int(row["volume"])),
        )
        for row in data
    ]


def write_bars(path: Path, rows: Sequence[tuple[str, ...]]) -> Path:
    path.write_text(HEADER + "".join(",".join(row) + "\n" for row in rows))
    return path


def write_config(path: Path, bars: Path, strategy: str, *, costs: bool = False, extra: str = "") -> Path:
    """A backtest config: one daily-bar symbol GOOG, no fees or slippage unless ``costs``."""
    fees = 'slippage_bps = "2"\nfee_bps = "1"\n' if costs else 'slippage_bps = "0"\nfee_bps = "0"\n'
    path.write_text(
        f"""
[marketdata]
symbols = ["GOOG"]
bar_seconds = 86400
csv_path = "{bars}"

[paper]
{fees}partial_fill_probability = 0.0
{extra}
{strategy}
"""
    )
    return path


SMA = """
[[strategies]]
id = "sma-goog"
kind = "sma_cross"
symbol = "GOOG"

[strategies.params]
fast = 10
slow = 20
qty = "1"
"""


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out)
    return code, out.getvalue()


def backtest_json(*argv: str) -> dict[str, Any]:
    code, text = cli("backtest", *argv, "--json")
    assert code == 0, text
    result: dict[str, Any] = json.loads(text)
    return result
