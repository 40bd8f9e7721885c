"""Loading strategies: built-ins, ``module:Class`` beside the config, entry points; bad ones refused by
name before any ledger is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoquant.errors import ConfigError
from autoquant.strategies import build_strategies
from autoquant.strategies.settings import StrategySettings

STRATEGY_MODULE = """
from pydantic import BaseModel, ConfigDict

from autoquant.domain.strategy import hold


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: int


class Always:
    Params = Params

    def __init__(self, *, id, symbols, params):
        self.id, self.symbols, self.params, self.warmup = id, tuple(symbols), params, 1

    def decide(self, state):
        return hold(state, f"always_{self.params.threshold}")
"""


def entry(kind: str, **params: object) -> StrategySettings:
    return StrategySettings(id="mine", kind=kind, symbol="AAPL", params=params)


def test_a_class_beside_the_config_loads_with_validated_params(tmp_path: Path) -> None:
    """kind = "module:Class" imports from the config's directory; params are checked by its model."""
    (tmp_path / "my_strategies_a.py").write_text(STRATEGY_MODULE)
    (strategy,) = build_strategies([entry("my_strategies_a:Always", threshold=3)], tmp_path / "c.toml")
    assert (strategy.id, strategy.symbols, strategy.warmup) == ("mine", ("AAPL",), 1)
    with pytest.raises(ConfigError, match=r"c\.toml: invalid strategies\[mine\]\.params\.threshold"):
        build_strategies([entry("my_strategies_a:Always", threshold="x")], tmp_path / "c.toml")
    with pytest.raises(ConfigError, match=r"missing strategies\[mine\]\.params\.threshold"):
        build_strategies([entry("my_strategies_a:Always")], tmp_path / "c.toml")


def test_an_installed_entry_point_is_a_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package exposing an ``autoquant.strategies`` entry point is found by its name."""
    (tmp_path / "my_strategies_b.py").write_text(STRATEGY_MODULE)
    info = tmp_path / "my_strategies_b-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-strategies-b\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[autoquant.strategies]\nalways = my_strategies_b:Always\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (strategy,) = build_strategies([entry("always", threshold=1)])
    assert strategy.id == "mine"


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("no_such_module_xyz:Thing", "no module 'no_such_module_xyz'"),
        ("autoquant.strategies.sma_cross:Nope", "has no 'Nope'"),
        ("autoquant.strategies.sma_cross:REASONS", "is not a class"),
        ("autoquant.errors:ConfigError", "no pydantic 'Params' model"),
        ("momentum", "unknown strategies[mine].kind 'momentum'"),
        ("just_a_module:", "write it as 'package.module:ClassName'"),
    ],
)
def test_a_kind_that_is_not_a_strategy_is_refused_in_one_line(kind: str, message: str) -> None:
    """Unknown modules, classes, non-classes, classes without Params, unknown names: one line each."""
    with pytest.raises(ConfigError) as raised:
        build_strategies([entry(kind)])
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_legacy_flat_keys_are_params_and_a_typo_is_named() -> None:
    """fast/slow/qty beside kind (older configs) are params; a misspelt one is refused by name."""
    legacy = StrategySettings.model_validate(
        {"id": "s", "kind": "sma_cross", "symbol": "AAPL", "fast": 2, "slow": 5, "qty": "1"}
    )
    assert legacy.params == {"fast": 2, "slow": 5, "qty": "1"}
    (built,) = build_strategies([legacy])
    assert built.warmup == 6
    typo = StrategySettings.model_validate(
        {"id": "s", "kind": "sma_cross", "symbol": "AAPL", "fats": 2, "slow": 5, "qty": "1"}
    )
    with pytest.raises(ConfigError, match=r"strategies\[s\]\.params"):
        build_strategies([typo])
