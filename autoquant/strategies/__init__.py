"""Strategies as pure ``decide`` functions, and the registry that builds them from config."""

from __future__ import annotations

from autoquant.strategies.registry import (
    STRATEGIES,
    StrategyFactory,
    build_strategies,
    build_strategy,
    register,
)
from autoquant.strategies.sma_cross import SmaCross

__all__ = ["STRATEGIES", "SmaCross", "StrategyFactory", "build_strategies", "build_strategy", "register"]
