"""``[marketdata]``: where bars come from and how they are checked."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from autoquant.domain.settings import Section
from autoquant.domain.values import Symbol


class MarketDataSettings(Section):
    source: Literal["synthetic", "csv", "alpaca"] = "synthetic"
    symbols: list[Symbol] = Field(default_factory=lambda: ["AAPL", "MSFT"])
    bar_seconds: float = Field(default=1.0, gt=0)
    csv_path: Path | None = None
    #: Market-data websocket base (default Alpaca's), e.g. a paper-server's ``ws://host:port``: stocks use
    #: ``{url}/v2/{feed}``, crypto ``{url}/v1beta3/crypto/us``; one stream's full URL is accepted too.
    url: str | None = None
    feed: Literal["iex", "sip"] = "iex"
    seed: int = 42
    #: How many bars out of order the reorder buffer absorbs before a gap is an incident.
    reorder_window: int = Field(default=4, ge=0)

    @field_validator("symbols")
    @classmethod
    def _each_once(cls, symbols: list[str]) -> list[str]:
        repeated = sorted({s for s in symbols if symbols.count(s) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once: list each symbol once")
        return symbols

    @model_validator(mode="after")
    def _csv_needs_path(self) -> MarketDataSettings:
        if self.source == "csv" and self.csv_path is None:
            raise ValueError("csv_path is required when source = 'csv'")
        if not self.symbols:
            raise ValueError("symbols must name at least one symbol")
        return self
