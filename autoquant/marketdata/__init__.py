"""Bar sources (synthetic, CSV replay, Alpaca), the reorder buffer and freshness tracking."""

from __future__ import annotations

from autoquant.marketdata.alpaca_bars import AlpacaBars, bar_from_alpaca
from autoquant.marketdata.freshness import FreshnessTracker
from autoquant.marketdata.reorder import DataGap, Released, ReorderBuffer
from autoquant.marketdata.replay import CsvBars
from autoquant.marketdata.source import BarSource, MalformedBarFile, MarketDataError, Sleep
from autoquant.marketdata.synthetic import SyntheticBars

__all__ = [
    "AlpacaBars",
    "BarSource",
    "CsvBars",
    "DataGap",
    "FreshnessTracker",
    "MalformedBarFile",
    "MarketDataError",
    "Released",
    "ReorderBuffer",
    "Sleep",
    "SyntheticBars",
    "bar_from_alpaca",
]
