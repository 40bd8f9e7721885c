"""Market data bars, validated at construction."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from autoquant.domain.values import NonNegative, Price, Symbol, UtcDatetime, to_ns

BAR_SCHEMA_VERSION: Literal[1] = 1


class Bar(BaseModel):
    """One OHLCV bar. ``close_time`` is when the bar became final and is the bar's identity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: Symbol
    open_time: UtcDatetime
    close_time: UtcDatetime
    open: Price
    high: Price
    low: Price
    close: Price
    volume: NonNegative
    source: str
    schema_version: Literal[1] = BAR_SCHEMA_VERSION

    @model_validator(mode="after")
    def _consistent(self) -> Bar:
        if self.close_time <= self.open_time:
            raise ValueError("close_time must be after open_time")
        if self.high < max(self.open, self.close):
            raise ValueError("high must be at least max(open, close)")
        if self.low > min(self.open, self.close):
            raise ValueError("low must be at most min(open, close)")
        return self

    @property
    def close_ns(self) -> int:
        return to_ns(self.close_time)
