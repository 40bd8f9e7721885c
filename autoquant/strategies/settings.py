"""``[[strategies]]``: one table per strategy instance, its settings chosen by ``kind``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from autoquant.domain.settings import Section
from autoquant.domain.values import Identifier, Quantity, Symbol


class SmaCrossSettings(Section):
    """``kind = "sma_cross"``: the reference SMA-crossover strategy."""

    id: Identifier
    kind: Literal["sma_cross"]
    symbol: Symbol
    fast: int = Field(gt=0)
    slow: int = Field(gt=0)
    qty: Quantity

    @model_validator(mode="after")
    def _windows(self) -> SmaCrossSettings:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be less than slow ({self.slow})")
        return self


#: One ``[[strategies]]`` entry: the settings model of its ``kind`` (a union as kinds are added).
StrategySettings = Annotated[SmaCrossSettings, Field(discriminator="kind")]
