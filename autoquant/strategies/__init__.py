"""Strategies as pure ``decide`` functions, and the factory that builds them from config."""

from __future__ import annotations

from autoquant.domain.strategy import Strategy
from autoquant.errors import ConfigError
from autoquant.strategies.settings import StrategySettings
from autoquant.strategies.sma_cross import SmaCross

__all__ = ["SmaCross", "build_strategy"]


def build_strategy(settings: StrategySettings) -> Strategy:
    """The strategy a ``[[strategies]]`` entry describes; ConfigError names the offending key."""
    where = f"strategies[{settings.id}]"
    if settings.kind == "sma_cross":
        try:
            return SmaCross(
                id=settings.id,
                symbol=settings.symbol,
                fast=settings.fast,
                slow=settings.slow,
                qty=settings.qty,
            )
        except ValueError as error:
            raise ConfigError(f"invalid {where}.fast/slow/qty: {error}") from None
    raise ConfigError(f"unknown {where}.kind {settings.kind!r}: the known kinds are 'sma_cross'")
