"""The CLI in-process: --json prints the inspection rows, human output reads well, resolve and controls."""

from __future__ import annotations

import asyncio
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from autoquant.errors import LedgerLocked
from autoquant.operator import inspection, render
from autoquant.operator.cli import main, operator_error
from autoquant.runtime.daemon import heartbeat_path
from tests.test_inspection import build, status_file, write_log


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """(config file, ledger, incident ids) on the known ledger, with a log file bearing its ids."""
    ledger = tmp_path / "ledger.db"
    incident_ids = asyncio.run(build(ledger))
    write_log(tmp_path / "autoquant.log")
    config = tmp_path / "autoquant.toml"
    config.write_text(f'[ledger]\npath = "{ledger}"\n[logging]\npath = "{tmp_path / "autoquant.log"}"\n')
    return config, ledger, incident_ids


def run(config: Path, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--config", str(config), *argv], out)
    return code, out.getvalue()


def run_json(config: Path, *argv: str) -> Any:
    code, text = run(config, *argv, "--json")
    assert code == 0, text
    return json.loads(text)


async def rows_of(ledger_path: Path, name: str, **kwargs: Any) -> Any:
    ledger = await inspection.open_readonly(ledger_path)
    try:
        return json.loads(json.dumps(await getattr(inspection, name)(ledger, **kwargs)))
    finally:
        await ledger.close()


def test_json_commands_print_the_inspection_rows(setup: tuple[Path, Path, dict[str, str]]) -> None:
    """orders, fills, positions and incidents --json print exactly the inspection rows, filters applied."""
    config, ledger, _ = setup
    assert run_json(config, "orders") == asyncio.run(rows_of(ledger, "orders"))
    assert [r["client_order_id"] for r in run_json(config, "orders", "--open")] == ["aq-4"]
    assert [r["client_order_id"] for r in run_json(config, "orders", "--symbol", "MSFT")] == ["aq-4"]
    assert run_json(config, "fills") == asyncio.run(rows_of(ledger, "fills"))
    assert run_json(config, "fills", "--since", "2026-01-06T00:00:00Z")[0]["execution_id"] == "x-2"
    assert run_json(config, "positions") == asyncio.run(rows_of(ledger, "positions"))
    assert run_json(config, "incidents") == asyncio.run(rows_of(ledger, "incidents"))
    assert len(run_json(config, "incidents", "--open")) == 1


def test_inspection_never_changes_the_ledger(setup: tuple[Path, Path, dict[str, str]]) -> None:
    """Every inspection command leaves the ledger's bytes as they were; at most SQLite's reader files
    (an empty WAL and the shared-memory index) appear next to it."""
    config, ledger, _ = setup
    before, siblings = ledger.read_bytes(), sorted(p.name for p in ledger.parent.iterdir())
    for argv in (["status"], ["orders"], ["fills"], ["positions"], ["incidents"], ["trace", "aq-1"]):
        assert run(config, *argv)[0] == 0
        assert run(config, *argv, "--json")[0] == 0
    assert ledger.read_bytes() == before
    created = {p.name for p in ledger.parent.iterdir()} - set(siblings)
    assert created <= {"ledger.db-wal", "ledger.db-shm"}
    wal = ledger.with_name("ledger.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_status_reads_the_daemon_side_file_next_to_the_ledger(
    setup: tuple[Path, Path, dict[str, str]],
) -> None:
    """status --json: running with pid while the daemon's side file is fresh, not running once it is stale."""
    config, ledger, _ = setup
    assert run_json(config, "status")["daemon"]["running"] is False
    now = datetime.now(UTC)
    status_file(heartbeat_path(ledger), now)
    fresh = run_json(config, "status")
    assert (fresh["daemon"]["running"], fresh["daemon"]["pid"]) == (True, os.getpid())
    assert [w["name"] for w in fresh["daemon"]["workers"]] == ["execution", "strategy"]
    assert fresh["trading_state"] == "active"
    assert fresh["pnl_today"]["mark_price_source"] == "last_fill"
    status_file(heartbeat_path(ledger), now - timedelta(seconds=20))
    stale = run_json(config, "status")["daemon"]
    assert (stale["running"], stale["pid"]) == (False, os.getpid())
    assert stale["note"].startswith("not running")


def test_human_status_names_each_concern(setup: tuple[Path, Path, dict[str, str]]) -> None:
    """status for a person: daemon, trading state, the pause with who and why, incidents with what to do."""
    config, _, ids = setup
    code, text = run(config, "status")
    assert code == 0
    assert "daemon:          not running" in text
    assert "trading state:   ACTIVE" in text
    assert "sma-msft since 2026-01-06 10:00:00 by ops: earnings" in text
    assert "reconciliation:  clean (startup" in text
    assert ids["open"] in text and "what to do: cancel it at the broker" in text
    assert "marked at the last fill" in text
    assert "{" not in text.split("positions:")[1]


def test_human_tables_show_the_operator_columns(setup: tuple[Path, Path, dict[str, str]]) -> None:
    """orders for a person: the operator's columns, one line per order, times to the second."""
    config, _, _ = setup
    code, text = run(config, "orders")
    header, *rows = text.splitlines()
    assert code == 0
    assert header.split() == list(render.COLUMNS["orders"])
    assert len(rows) == 4
    assert rows[0].split() == [
        "aq-1",
        "b-1",
        "sma-aapl",
        "AAPL",
        "buy",
        "10",
        "4",
        "100.5",
        "canceled",
        "2026-01-05",
        "23:00:00",
        "2026-01-05",
        "23:00:00",
    ]
    assert run(config, "fills", "--symbol", "MSFT")[1] == "(none)\n"


def test_table_cuts_the_widest_columns_to_fit() -> None:
    """A table wider than the terminal cuts its widest columns with an ellipsis; narrow ones stay whole."""
    rows = [{"id": "aq-1", "message": "x" * 80, "state": "open"}]
    lines = render.table(rows, ["id", "message", "state"], width=40)
    assert all(len(line) <= 40 for line in lines)
    assert "…" in lines[1] and lines[1].startswith("aq-1") and lines[1].endswith("open")
    assert render.table(rows, ["id", "message", "state"])[1].count("x") == 80


def test_trace_prints_one_line_per_entry_with_the_log_lines(
    setup: tuple[Path, Path, dict[str, str]],
) -> None:
    """trace for a person: one line per entry, time first; the log line bearing the broker id included."""
    config, _, _ = setup
    code, text = run(config, "trace", "b-1")
    lines = text.splitlines()
    assert code == 0
    assert [line.split()[1] for line in lines] == [
        "decision",
        "risk_check",
        "reserved",
        "risk_check",
        "log",
        "transition",
        "transition",
        "fill",
        "log",
        "transition",
        "incident",
    ]
    assert "cancel_requested" in lines[8]
    assert "partial_fill: order PARTIALLY_FILLED, filled 4" in lines[6]
    assert [entry["what"] for entry in run_json(config, "trace", "d-1")].count("log") == 2


def test_resolve_closes_an_incident_and_leaves_the_pause(
    setup: tuple[Path, Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """resolve records the operator's note; the incident leaves --open; pauses stay; twice is harmless."""
    config, _, ids = setup
    code, text = run(config, "resolve", ids["open"], "--note", "canceled b-9 at the broker")
    assert code == 0 and "resolved" in text and "autoquant resume" in text
    assert run_json(config, "incidents", "--open") == []
    resolved = next(i for i in run_json(config, "incidents") if i["incident_id"] == ids["open"])
    assert resolved["resolution_note"] == "canceled b-9 at the broker"
    assert resolved["resolved_by"].endswith("@cli")
    assert run_json(config, "status")["paused"][0]["scope"] == "sma-msft"
    code, text = run(config, "resolve", ids["open"], "--note", "again")
    assert code == 0 and "already resolved" in text
    assert capsys.readouterr().err == ""


def test_pause_and_resume_a_strategy(setup: tuple[Path, Path, dict[str, str]]) -> None:
    """pause/resume --strategy write controls that status shows with reason and actor."""
    config, _, _ = setup
    code, text = run(config, "pause", "--strategy", "sma-aapl", "--reason", "news")
    assert code == 0 and "paused: sma-aapl, sma-msft" in text
    paused = {p["scope"]: p for p in run_json(config, "status")["paused"]}
    assert paused["sma-aapl"]["reason"] == "news" and paused["sma-aapl"]["actor"].endswith("@cli")
    assert run(config, "resume", "--strategy", "sma-msft", "--reason", "done")[0] == 0
    assert [p["scope"] for p in run_json(config, "status")["paused"]] == ["sma-aapl"]
    code, _ = run(config, "halt", "--reason", "stop")
    assert code == 0 and run_json(config, "status")["trading_state"] == "halted"


def test_operator_error_is_found_inside_task_groups() -> None:
    """An AutoquantError raised inside a TaskGroup (an exception group) is still an operator error."""
    locked = LedgerLocked("held")
    nested = ExceptionGroup("outer", [ValueError("bug"), ExceptionGroup("inner", [locked])])
    assert operator_error(nested) is locked
    assert operator_error(ValueError("bug")) is None
