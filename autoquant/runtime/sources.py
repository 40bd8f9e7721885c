"""Build the configured bar source from ``[marketdata]`` settings (the runtime wires the Alpaca keys in)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from autoquant.brokers.settings import Secrets, alpaca_secrets
from autoquant.domain.bars import Bar
from autoquant.domain.clock import Clock
from autoquant.errors import ConfigError
from autoquant.marketdata.alpaca_bars import AlpacaBars
from autoquant.marketdata.replay import CsvBars
from autoquant.marketdata.settings import MarketDataSettings
from autoquant.marketdata.source import BarSource, Sleep
from autoquant.marketdata.synthetic import SyntheticBars
from autoquant.strategies.settings import StrategySettings


def build_source(
    settings: MarketDataSettings,
    clock: Clock,
    *,
    sleep: Sleep = asyncio.sleep,
    secrets: Secrets | None = None,
    csv_pace_s: float | None = None,
    csv_restamp: bool = True,
) -> BarSource:
    """The daemon's source. CSV replays one timestamp per ``bar_seconds`` (``csv_pace_s`` overrides),
    re-stamped with the clock; call ``await source.load()`` on a ``CsvBars`` to fail at startup.
    Alpaca secrets come from the environment unless given."""
    if settings.source == "synthetic":
        return SyntheticBars(
            settings.symbols, bar_seconds=settings.bar_seconds, seed=settings.seed, clock=clock, sleep=sleep
        )
    if settings.source == "csv":
        if settings.csv_path is None:
            raise ConfigError("marketdata.csv_path is required when marketdata.source = 'csv'")
        return CsvBars(
            settings.csv_path,
            bar_seconds=settings.bar_seconds,
            clock=clock,
            sleep=sleep,
            pace_s=settings.bar_seconds if csv_pace_s is None else csv_pace_s,
            restamp=csv_restamp,
            symbols=settings.symbols,
        )
    if settings.source == "alpaca":
        keys = secrets or alpaca_secrets()
        return AlpacaBars(
            settings.symbols,
            key_id=keys.key_id,
            secret_key=keys.secret_key,
            url=settings.url,
            feed=settings.feed,
            # Alpaca's bars are a minute long; a paper-server walk's are bar_seconds (set 60 for Alpaca).
            bar_length=timedelta(seconds=settings.bar_seconds),
        )
    raise ConfigError(f"unknown marketdata.source {settings.source!r}: use synthetic, csv or alpaca")


def check_csv_symbols(bars: Sequence[Bar], csv_path: Path, strategies: Sequence[StrategySettings]) -> None:
    """Refuse a start where a strategy's symbol has no bar in the CSV data: it would never trade."""
    present = {bar.symbol for bar in bars}
    for strategy in strategies:
        if strategy.symbol not in present:
            raise ConfigError(
                f"strategy {strategy.id!r} trades {strategy.symbol}, but {csv_path} has no bars for it: "
                f"add {strategy.symbol}'s bars (a {strategy.symbol}.csv in a directory of files), or "
                "remove the strategy"
            )
