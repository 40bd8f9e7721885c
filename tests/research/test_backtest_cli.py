"""``autoquant backtest`` as an operator meets it: deterministic output, artifacts, refusals that write
nothing, and the inspection commands reading the backtest's ledger with ``--ledger``."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.research.rig import SMA, backtest_json, cli, goog_rows, write_bars, write_config

#: About a year of daily bars: enough for several round trips, quick to run.
TO = "2005-09-30"


@pytest.fixture
def goog(tmp_path: Path) -> Path:
    return write_bars(tmp_path / "GOOG.csv", goog_rows())


def test_two_runs_print_the_same_report(tmp_path: Path, goog: Path) -> None:
    """Same inputs, same JSON (apart from wall_s and bars_per_s), with fees and slippage on."""
    config = write_config(tmp_path / "sma.toml", goog, SMA, costs=True)
    first = backtest_json("--config", str(config), "--to", TO)
    second = backtest_json("--config", str(config), "--to", TO)
    for report in (first, second):
        assert report.pop("wall_s") > 0 and report.pop("bars_per_s") > 0
    assert first == second
    assert first["trades"] and Decimal(first["fees"]) > 0
    assert set(first["decisions"]) == {"buy", "sell", "hold"}


def test_out_holds_ledger_reports_trades_and_chart(tmp_path: Path, goog: Path) -> None:
    """--out writes ledger.db, report.json/html, trades.csv and equity.png; --ledger reads that ledger."""
    config = write_config(tmp_path / "sma.toml", goog, SMA)
    out = tmp_path / "run"
    code, text = cli("--config", str(config), "backtest", "--to", TO, "--out", str(out))
    assert code == 0, text
    assert text.startswith("backtest: ")
    assert {p.name for p in out.iterdir()} >= {
        "ledger.db",
        "report.json",
        "report.html",
        "trades.csv",
        "equity.png",
    }
    report = json.loads((out / "report.json").read_text())
    trades = (out / "trades.csv").read_text().splitlines()
    assert len(trades) == len(report["trades"]) + 1
    assert (out / "equity.png").read_bytes()[:4] == b"\x89PNG"
    code, fills = cli("--config", str(config), "fills", "--ledger", str(out / "ledger.db"), "--json")
    assert code == 0 and len(json.loads(fills)) == 2 * len(report["trades"]) + len(report["open_positions"])
    # A second run into the same directory is refused, unless --force.
    code, _ = cli("--config", str(config), "backtest", "--to", TO, "--out", str(out))
    assert code == 2
    code, _ = cli("--config", str(config), "backtest", "--to", TO, "--out", str(out), "--force")
    assert code == 0


BAD_STRATEGY = SMA.replace('kind = "sma_cross"', 'kind = "nowhere:Strategy"')
WRONG_PARAM = SMA.replace("fast = 10", 'fast = "ten"')
MISSING_PARAM = SMA.replace("fast = 10\n", "")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown_class", "no module 'nowhere'"),
        ("wrong_param", "strategies[sma-goog].params.fast"),
        ("missing_param", "missing strategies[sma-goog].params.fast"),
        ("unsorted", "is before the previous row's"),
        ("duplicated", "duplicates the previous row's"),
        ("nan", "GOOG.csv:4"),
        ("from_after_to", "--from 2005-03-01 is after --to 2005-01-01"),
        ("non_empty_out", "exists and is not empty"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, expected: str
) -> None:
    """Each operator mistake: one line on stderr naming it, exit 2, no ledger and no output files."""
    rows = goog_rows()[:60]
    strategy, argv = SMA, []
    if case == "unknown_class":
        strategy = BAD_STRATEGY
    elif case == "wrong_param":
        strategy = WRONG_PARAM
    elif case == "missing_param":
        strategy = MISSING_PARAM
    elif case == "unsorted":
        rows[5], rows[6] = rows[6], rows[5]
    elif case == "duplicated":
        rows[6] = rows[5]
    elif case == "nan":
        rows[2] = (rows[2][0], "nan", *rows[2][2:])
    elif case == "from_after_to":
        argv = ["--from", "2005-03-01", "--to", "2005-01-01"]
    out = tmp_path / "out"
    if case == "non_empty_out":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    bars = write_bars(tmp_path / "GOOG.csv", rows)
    config = write_config(tmp_path / "c.toml", bars, strategy)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, text = cli("--config", str(config), "backtest", *argv, "--out", str(out), "--json")
    err = capsys.readouterr().err
    assert code == 2 and text == ""
    assert expected in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "nothing was written"


def test_alpaca_py_csv_layout_with_two_symbols_in_one_file(tmp_path: Path) -> None:
    """The file alpaca-py's get_stock_bars(...).df.to_csv() writes (symbol first, grouped by symbol,
    extra columns, pandas timestamps) backtests like a folder of SYMBOL.csv with the same bars."""
    rows = goog_rows()[:120]
    lines = ["symbol,timestamp,open,high,low,close,volume,trade_count,vwap"]
    for symbol in ("GOOG", "MSFT"):
        for stamp, o, h, low, c, v in rows:
            pandas_stamp = stamp.replace("T", " ").replace("Z", "+00:00")
            lines.append(f"{symbol},{pandas_stamp},{o},{h},{low},{c},{v},100,{c}")
    alpaca = tmp_path / "bars.csv"
    alpaca.write_text("\n".join(lines) + "\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    write_bars(folder / "GOOG.csv", rows)
    write_bars(folder / "MSFT.csv", rows)
    config = write_config(tmp_path / "sma.toml", alpaca, SMA)
    from_alpaca = backtest_json("--config", str(config))
    from_folder = backtest_json("--config", str(config), "--bars", str(folder))
    for report in (from_alpaca, from_folder):
        report.pop("wall_s"), report.pop("bars_per_s"), report.pop("inputs_sha256")
    assert from_alpaca == from_folder
    assert from_alpaca["bars"] == 240 and from_alpaca["trades"]
