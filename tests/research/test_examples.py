"""The examples run from the repository root with the README's command: each trades, each as its own
``module:Class`` beside its config, on the data shipped in examples/data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.research.rig import backtest_json

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("name", "order_reasons"),
    [("rsi_reversion", {"oversold", "recovered"}), ("rotation", {"rotate_in", "rotate_out"})],
)
def test_an_example_backtests_from_the_repository_root(
    name: str, order_reasons: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`autoquant backtest --config examples/NAME.toml` runs (here on its first year) and trades."""
    monkeypatch.chdir(ROOT)
    report = backtest_json("--config", f"examples/{name}.toml", "--to", "2005-08-31")
    reasons = set(report["decisions"].get("buy", {})) | set(report["decisions"].get("sell", {}))
    assert reasons == order_reasons
    assert report["trades"], "round trips were closed"
