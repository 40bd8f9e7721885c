"""``[[strategies]]``: one table per strategy instance: its id, its ``kind``, its symbol(s), its params.

``kind`` names a built-in (``"sma_cross"``), a class (``"package.module:ClassName"``, importable from
the config file's directory or the Python path) or an installed entry point in the group
``autoquant.strategies``. The parameters live in ``[strategies.params]`` and are validated against the
strategy's own ``Params`` model when it is loaded (``strategies.loading``), before any ledger is
touched. For compatibility, keys written beside ``kind`` (``fast = 3`` as older configs did) are
taken as parameters too, so a misspelt one is still refused by name by the strategy's model.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from autoquant.domain.settings import Section
from autoquant.domain.values import Identifier, Symbol

#: The keys of a ``[[strategies]]`` table itself; any other key is a parameter.
OWN_KEYS = frozenset({"id", "kind", "symbol", "symbols", "params"})


class StrategySettings(Section):
    """One ``[[strategies]]`` entry."""

    id: Identifier
    kind: str = Field(min_length=1)
    #: The one symbol a one-symbol strategy trades (or use ``symbols``).
    symbol: Symbol | None = None
    #: The symbols a multi-symbol strategy trades, in the order it wants them.
    symbols: list[Symbol] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat_params(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        extra = {key: value for key, value in data.items() if key not in OWN_KEYS}
        if not extra:
            return data
        params = dict(data.get("params") or {})
        for key, value in extra.items():
            if key in params:
                raise ValueError(f"{key} is given both beside kind and in params: keep one")
            params[key] = value
        kept = {key: value for key, value in data.items() if key in OWN_KEYS}
        return kept | {"params": params}

    @model_validator(mode="after")
    def _symbols(self) -> StrategySettings:
        if (self.symbol is None) == (not self.symbols):
            raise ValueError("give either symbol = 'X' or symbols = ['X', 'Y'], not both nor neither")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols lists a symbol twice: {self.symbols}")
        return self

    @property
    def traded(self) -> tuple[str, ...]:
        """The symbols this strategy trades, in order."""
        return (self.symbol,) if self.symbol is not None else tuple(self.symbols)


#: The name older code and configs used when sma_cross was the only kind.
SmaCrossSettings = StrategySettings
