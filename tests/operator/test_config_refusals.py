"""Issue 10 items 8 and 9: bad config refused in one line before anything is written; paths anchored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.daemon_harness import DaemonProcess, wait_for
from tests.operator.helpers import cli, one_line_error, status_when, write_config

STRATEGY = """
[marketdata]
symbols = ["AAPL", "MSFT"]
[[strategies]]
id = "sma-aapl"
kind = "sma_cross"
symbol = "AAPL"
fast = 2
slow = 4
qty = "{qty}"
"""


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        ('[risk]\ndaily_loss_limit = "-2000"\n', ("risk.daily_loss_limit", "more than 0")),
        ('[risk]\nmax_drawdown = "0"\n', ("risk.max_drawdown", "more than 0")),
        (STRATEGY.format(qty="1E-19"), ("qty", "decimal places")),
        (
            '[marketdata]\nsymbols = ["AAPL", "MSFT", "AAPL"]\n',
            ("marketdata.symbols", "AAPL listed more than once"),
        ),
        ('[paper]\nstarting_cash = "-5"\n', ("paper.starting_cash", "more than 0")),
    ],
)
def test_bad_values_are_refused_before_anything_is_written(
    tmp_path: Path, extra: str, needles: tuple[str, ...]
) -> None:
    """Once accepted (negative limit, 1E-19 qty, repeated symbol, negative cash): one line, exit 2."""
    text = write_config(tmp_path).read_text()
    if extra.startswith("[paper]"):
        text = text.replace("[paper]\n", extra)
    else:
        text += extra
    config = tmp_path / "autoquant.toml"
    config.write_text(text)
    one_line_error(cli(config, "run"), *needles)
    assert not (tmp_path / "ledger.db").exists()


def bars_csv(path: Path, count: int) -> None:
    lines = ["timestamp,open,high,low,close,volume"]
    for minute in range(count):
        price = 100 + minute % 7
        lines.append(f"2026-01-05T14:{minute:02d}:00Z,{price},{price + 1},{price - 1},{price},1000")
    path.write_text("\n".join(lines) + "\n")


def csv_config(tmp_path: Path, symbols: list[str], strategies: list[str]) -> Path:
    data = tmp_path / "bars"
    data.mkdir(exist_ok=True)
    for symbol in symbols:
        bars_csv(data / f"{symbol}.csv", 12)
    extra = (
        f'[marketdata]\nsource = "csv"\ncsv_path = "{data}"\nbar_seconds = 0.05\n'
        f"symbols = {json.dumps(strategies)}\n"
    )
    for symbol in strategies:
        extra += (
            f'[[strategies]]\nid = "sma-{symbol.lower()}"\nkind = "sma_cross"\nsymbol = "{symbol}"\n'
            'fast = 2\nslow = 4\nqty = "1"\n'
        )
    return write_config(tmp_path, ledger=str(tmp_path / "ledger.db"), extra=extra)


def test_a_strategy_without_csv_bars_is_a_load_time_error(tmp_path: Path) -> None:
    """A strategy whose symbol has no CSV bars: `run` refuses in one line naming it; no ledger is created."""
    config = csv_config(tmp_path, ["AAPL"], ["AAPL", "MSFT"])
    one_line_error(cli(config, "run"), "sma-msft", "MSFT", "no bars")
    assert not (tmp_path / "ledger.db").exists()


@pytest.mark.slow
def test_a_csv_source_that_ends_says_so_in_status(tmp_path: Path) -> None:
    """A CSV replay that reaches its end: status says "market data ended at …" and not healthy."""
    daemon = DaemonProcess(tmp_path / "daemon")
    csv_config(daemon.root, ["AAPL", "MSFT"], ["AAPL", "MSFT"])  # over the harness's config
    try:
        started = daemon.start()
        wait_for(lambda: daemon.ready_or_exited(started), 60, "the start-up reconciliation")
        assert daemon.alive(), daemon.tail()
        ended = status_when(
            daemon, lambda s: s["daemon"]["market_data_ended"], 60, "status to say market data ended"
        )
        assert ended["daemon"]["healthy"] is False
        human = daemon.cli("status").stdout
        assert "(market data ended at 20" in human, human
        assert daemon.terminate() == 0, daemon.tail()
    finally:
        daemon.kill()


@pytest.mark.slow
def test_relative_paths_follow_the_config_file_not_the_working_directory(tmp_path: Path) -> None:
    """`run` elsewhere: ledger, paper state, log land beside the config; the start line names them."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    config = home / "autoquant.toml"
    config.write_text(
        '[ledger]\npath = "var/ledger.db"\n[paper]\nstate_path = "var/paper.db"\n'
        '[logging]\npath = "var/autoquant.log"\n[marketdata]\nbar_seconds = 0.1\n'
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "autoquant", "--config", str(config), "run"],
        cwd=elsewhere,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        log = home / "var" / "autoquant.log"
        line = wait_for(
            lambda: (
                log.exists()
                and next((x for x in log.read_text().splitlines() if "daemon_starting" in x), None)
            ),
            60,
            "the start-up line",
        )
        start = json.loads(str(line))
        assert start["config"] == str(config.resolve())
        assert start["ledger"] == str((home / "var" / "ledger.db").resolve())
        assert start["paper_state"] == str((home / "var" / "paper.db").resolve())
        assert not (elsewhere / "var").exists()
        status = cli(config, "status", cwd=elsewhere)
        assert status.returncode == 0 and "running (pid" in status.stdout, status
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
