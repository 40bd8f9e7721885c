"""The strategy registry: ``kind`` → the factory that builds a strategy from its ``[[strategies]]`` entry.

Built-in strategies register themselves here; the daemon, the backtest and the tests build every
strategy through ``build_strategy``, so a strategy is found the same way wherever it runs.
"""

from __future__ import annotations

from collections.abc import Callable

from autoquant.domain.strategy import Strategy
from autoquant.errors import ConfigError
from autoquant.strategies.settings import SmaCrossSettings, StrategySettings
from autoquant.strategies.sma_cross import SmaCross

#: Builds a strategy from its settings; raises ValueError (with the reason) on parameters it refuses.
StrategyFactory = Callable[[StrategySettings], Strategy]

STRATEGIES: dict[str, StrategyFactory] = {}


def register(kind: str, factory: StrategyFactory) -> None:
    """Make ``kind`` buildable; a kind registered twice is a programming error."""
    if kind in STRATEGIES:
        raise ValueError(f"strategy kind {kind!r} is registered twice")
    STRATEGIES[kind] = factory


def build_strategy(settings: StrategySettings) -> Strategy:
    """The strategy a ``[[strategies]]`` entry describes; ConfigError names the offending key."""
    where = f"strategies[{settings.id}]"
    factory = STRATEGIES.get(settings.kind)
    if factory is None:
        known = ", ".join(repr(kind) for kind in sorted(STRATEGIES))
        raise ConfigError(f"unknown {where}.kind {settings.kind!r}: the known kinds are {known}")
    try:
        return factory(settings)
    except ValueError as error:
        raise ConfigError(f"invalid {where}.fast/slow/qty: {error}") from None


def _sma_cross(settings: SmaCrossSettings) -> Strategy:
    return SmaCross(
        id=settings.id, symbol=settings.symbol, fast=settings.fast, slow=settings.slow, qty=settings.qty
    )


register("sma_cross", _sma_cross)
