"""``[[strategies]]``: one table per strategy instance."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from autoquant.domain.settings import Section
from autoquant.domain.values import Identifier, Quantity, Symbol


class StrategySettings(Section):
    id: Identifier
    kind: Literal["sma_cross"]
    symbol: Symbol
    fast: int = Field(gt=0)
    slow: int = Field(gt=0)
    qty: Quantity

    @model_validator(mode="after")
    def _windows(self) -> StrategySettings:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be less than slow ({self.slow})")
        return self
