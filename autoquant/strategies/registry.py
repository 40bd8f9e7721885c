"""The strategy registry: ``kind`` → the class that builds a strategy from its ``[[strategies]]`` entry.

Built-in strategies register themselves here; user strategies are found by ``module:Class`` or by an
installed entry point (``strategies.loading``). The daemon, the backtest and the tests build every
strategy through ``build_strategy``, so a strategy is found the same way wherever it runs.

A strategy class is loadable when it has a pydantic ``Params`` model and either a classmethod
``from_params(id, symbols, params)`` or a constructor ``Class(id=..., symbols=..., params=...)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autoquant.domain.strategy import Strategy
from autoquant.errors import ConfigError
from autoquant.strategies.loading import construct, find_class
from autoquant.strategies.settings import StrategySettings
from autoquant.strategies.sma_cross import SmaCross

#: A loadable strategy class (see the module docstring); Any because user classes are found at run time.
StrategyFactory = type[Any]

STRATEGIES: dict[str, StrategyFactory] = {}


def register(kind: str, factory: StrategyFactory) -> None:
    """Make ``kind`` buildable; a kind registered twice is a programming error."""
    if kind in STRATEGIES:
        raise ValueError(f"strategy kind {kind!r} is registered twice")
    STRATEGIES[kind] = factory


def build_strategy(settings: StrategySettings, base_dir: Path | None = None) -> Strategy:
    """The strategy a ``[[strategies]]`` entry describes; ConfigError (one line) names the offending key.

    ``base_dir`` is the config file's directory, searched first for ``module:Class`` kinds.
    """
    cls = find_class(settings, STRATEGIES, base_dir)
    return construct(cls, settings)


def build_strategies(settings: list[StrategySettings], source: Path | None = None) -> list[Strategy]:
    """Every configured strategy, or the first ConfigError (prefixed with the config file, if any).

    ``source`` is the config file: its directory is searched first for ``module:Class`` kinds."""
    try:
        return [build_strategy(entry, None if source is None else source.parent) for entry in settings]
    except ConfigError as error:
        if source is None:
            raise
        raise ConfigError(f"{source}: {error}") from None


register("sma_cross", SmaCross)

__all__ = ["STRATEGIES", "StrategyFactory", "build_strategies", "build_strategy", "register"]
