"""Regenerate the example bars: ``python examples/data/make_data.py`` (needs matplotlib and numpy).

* ``GOOG.csv`` — real daily bars of Google (2004-08-19 .. 2008-10-14, 1,047 sessions) from the sample
  data matplotlib ships (``matplotlib.cbook.get_sample_data("goog.npz")``; matplotlib's licence is
  BSD-style, its sample data is distributed with it). Each bar is stamped at 00:00 UTC of its date.
* ``SYNTH.csv`` — generated: a seeded geometric random walk over the same dates (no real market), for
  the two-symbol example. Deterministic: the same seed writes the same file.
"""

from __future__ import annotations

import csv
import random
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from matplotlib import cbook

HERE = Path(__file__).parent
CENT = Decimal("0.01")
HEADER = ("timestamp", "open", "high", "low", "close", "volume")


def money(value: float) -> str:
    return str(Decimal(repr(float(value))).quantize(CENT, rounding=ROUND_HALF_UP))


def goog() -> list[tuple[str, ...]]:
    data = cbook.get_sample_data("goog.npz")["price_data"]
    return [
        (
            f"{row['date']}T00:00:00Z",
            money(row["open"]),
            money(row["high"]),
            money(row["low"]),
            money(row["close"]),
            str(int(row["volume"])),
        )
        for row in data
    ]


def synth(dates: list[str], seed: int = 11) -> list[tuple[str, ...]]:
    rng = random.Random(seed)
    price, rows = 100.0, []
    for date in dates:
        open_ = price * (1 + rng.gauss(0, 0.004))
        close = open_ * (1 + rng.gauss(0.0003, 0.018))
        high = max(open_, close) * (1 + abs(rng.gauss(0, 0.006)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, 0.006)))
        rows.append(
            (date, money(open_), money(high), money(low), money(close), str(rng.randint(10**5, 10**6)))
        )
        price = close
    return rows


def write(name: str, rows: list[tuple[str, ...]]) -> None:
    with (HERE / name).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)


if __name__ == "__main__":
    real = goog()
    write("GOOG.csv", real)
    write("SYNTH.csv", synth([row[0] for row in real]))
