"""Issue 13: `autoquant bars download` against a real paper-server process writes the CSV that `autoquant
backtest` runs, and the same request twice writes the same bytes (the server's history is a function of
its seed and the window, not of when it is asked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoquant.chaos.processes import CHAOS_KEYS, ServerProcess, key_env

pytestmark = pytest.mark.slow

WINDOW = ("--start", "2026-11-02T14:30:00Z", "--end", "2026-11-02T17:29:00Z")
CONFIG = """\
[ledger]
path = "{root}/ledger.db"
[marketdata]
symbols = ["AAPL", "MSFT"]
bar_seconds = 60
[paper]
partial_fill_probability = 0.0
[[strategies]]
id = "sma-aapl"
kind = "sma_cross"
symbol = "AAPL"
[strategies.params]
fast = 3
slow = 8
qty = "2"
[[strategies]]
id = "sma-msft"
kind = "sma_cross"
symbol = "MSFT"
[strategies.params]
fast = 3
slow = 8
qty = "2"
"""


def autoquant(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AUTOQUANT_"))}
    return subprocess.run(
        [sys.executable, "-m", "autoquant", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env={**environment, **key_env(CHAOS_KEYS)},
        timeout=180,
        check=False,
    )


def test_downloaded_bars_run_a_backtest_and_download_the_same_twice(tmp_path: Path) -> None:
    """Three hours of 1Min bars for two symbols from a paper-server process: the same bytes twice, and
    a backtest over them trades and reports."""
    config = tmp_path / "autoquant.toml"
    config.write_text(CONFIG.format(root=tmp_path))
    first, second = tmp_path / "bars.csv", tmp_path / "again.csv"
    with ServerProcess(tmp_path / "server") as server:
        for out in (first, second):
            args = ("bars", "download", "--symbols", "AAPL,MSFT", *WINDOW, "--timeframe", "1Min")
            result = autoquant(config, *args, "--out", str(out), "--url", server.url)
            assert result.returncode == 0, result.stderr
            assert f"wrote 360 1Min bars to {out}" in result.stdout, result.stdout
    assert first.read_bytes() == second.read_bytes()
    ran = autoquant(config, "backtest", "--bars", str(first), "--json", "--out", str(tmp_path / "bt"))
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["bars"] == 360, report
    assert report["trades"], report  # the strategies traded on the downloaded bars
    assert report["inputs_sha256"] and report["equity_final"] != "100000", report
    assert (tmp_path / "bt" / "report.html").is_file()
