"""Configuration: defaults, the documented file, unknown keys and invalid strategies refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoquant.errors import ConfigError
from autoquant.runtime.config import Config, alpaca_secrets, anchor_paths, load, parse, resolve_path
from autoquant.strategies import build_strategies

ROOT = Path(__file__).parents[1]


def test_documented_default_file_equals_built_in_defaults() -> None:
    """config/autoquant.toml parses and says exactly what the built-in defaults say (its relative paths
    anchored at the project's root, the parent of its config/ folder)."""
    documented = load(ROOT / "config" / "autoquant.toml")
    defaults = anchor_paths(Config(), ROOT)
    assert documented.model_dump(exclude={"source"}) == defaults.model_dump(exclude={"source"})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"ledger": {"pth": "x"}}, "unknown key 'ledger.pth'"),
        ({"surprise": 1}, "unknown key 'surprise'"),
        ({"broker": {"kind": "ibkr"}}, "invalid broker.kind: 'ibkr' is not one of 'paper', 'alpaca'"),
        ({"broker": {"kind": "paper", "timeout_s": 3}}, "unknown key 'broker.timeout_s' for kind = 'paper'"),
        ({"broker": {"kind": "alpaca", "timeout_s": 0}}, "invalid broker.timeout_s"),
        (
            {
                "strategies": [
                    {"id": "a", "kind": "sma_cross", "symbol": "TSLA", "fast": 1, "slow": 5, "qty": 1}
                ]
            },
            "not in [marketdata] symbols",
        ),
        (
            {"strategies": [{"id": "a", "kind": "sma_cross", "symbol": "AAPL", "symbols": ["AAPL"]}]},
            "give either symbol",
        ),
        ({"marketdata": {"source": "csv"}}, "csv_path is required"),
        ({"paper": {"faults": {"error_5xx": 1.5}}}, "invalid paper.faults.error_5xx"),
    ],
)
def test_bad_config_is_refused_naming_the_key(data: dict[str, object], message: str) -> None:
    """Each invalid config raises one ConfigError whose text names the offending key."""
    with pytest.raises(ConfigError) as raised:
        parse(data)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"fast": 5, "slow": 5, "qty": 1},
            "invalid strategies[a].params: fast (5) must be less than slow (5)",
        ),
        ({"kind": "rsi", "fast": 1, "slow": 5, "qty": 1}, "unknown strategies[a].kind 'rsi'"),
        ({"fast": 1, "slow": 5, "qty": 0}, "invalid strategies[a].params.qty"),
        ({"fast": 1, "slow": 5, "qty": 1, "x": 1}, "unknown key strategies[a].params.x"),
    ],
)
def test_bad_strategy_params_are_refused_at_load_naming_the_key(
    entry: dict[str, object], message: str
) -> None:
    """A strategy's parameters are checked by its own model when it is built: one line naming the key."""
    config = parse({"strategies": [{"id": "a", "kind": "sma_cross", "symbol": "AAPL", **entry}]})
    with pytest.raises(ConfigError) as raised:
        build_strategies(config.strategies)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_path_resolution_order(tmp_path: Path) -> None:
    """--config wins over $AUTOQUANT_CONFIG, which wins over the default file."""
    assert resolve_path("a.toml", {"AUTOQUANT_CONFIG": "b.toml"}) == Path("a.toml")
    assert resolve_path(None, {"AUTOQUANT_CONFIG": "b.toml"}) == Path("b.toml")


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    """A config path that does not exist is refused with the path in the message."""
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.toml")


def test_invalid_toml_is_a_clear_error(tmp_path: Path) -> None:
    """A file that is not TOML is refused naming the file."""
    path = tmp_path / "bad.toml"
    path.write_text("[ledger\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(path)


def test_secrets_only_from_the_environment() -> None:
    """Alpaca keys come from APCA_API_KEY_ID / APCA_API_SECRET_KEY and are never printed."""
    with pytest.raises(ConfigError, match="APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        alpaca_secrets({})
    secrets = alpaca_secrets({"APCA_API_KEY_ID": "k", "APCA_API_SECRET_KEY": "s3cret"})
    assert "s3cret" not in repr(secrets)
