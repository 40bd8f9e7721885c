"""Issue 10 items 5 and 10: operator acts through the real CLI: reasons required, resume weighs open
incidents, an unsafe ledger is refused before anything is written, typed text is escaped."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

from autoquant.ledger import Ledger
from tests.operator.helpers import cli, one_line_error, write_config


def open_incident(ledger_path: Path, scope: str = "account") -> str:
    async def write() -> str:
        ledger = await Ledger.open(ledger_path)
        try:
            incident_id, _ = await ledger.open_incident(
                kind="cash_mismatch",
                subject="seeded",
                scope=scope,
                message="cash differs by 12.50",
                action="compare the broker's activities with `autoquant fills`",
                details={},
                local_ts_ns=time.time_ns(),
            )
            return incident_id
        finally:
            await ledger.close()

    return asyncio.run(write())


def test_resume_needs_a_reason(tmp_path: Path) -> None:
    """`resume` without --reason is refused (exit 2) like pause and halt; nothing is recorded."""
    config = write_config(tmp_path)
    assert cli(config, "migrate").returncode == 0
    before = (tmp_path / "ledger.db").read_bytes()
    result = cli(config, "resume")
    assert result.returncode == 2 and "--reason" in result.stderr, result
    assert (tmp_path / "ledger.db").read_bytes() == before


def test_resume_over_open_incidents_lists_them_and_asks_for_force(tmp_path: Path) -> None:
    """Open incidents: `resume` is refused listing them; `resume --force` resumes and names them."""
    config = write_config(tmp_path)
    assert cli(config, "halt", "--reason", "look").returncode == 0
    incident_id = open_incident(tmp_path / "ledger.db")
    line = one_line_error(cli(config, "resume", "--reason", "checked"), incident_id, "--force", "resolve")
    assert "cash differs by 12.50" in line
    status = json.loads(cli(config, "status", "--json").stdout)
    assert status["trading_state"] == "halted"
    forced = cli(config, "resume", "--reason", "checked", "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"resumed over 1 open incident(s): {incident_id}" in forced.stdout
    assert json.loads(cli(config, "status", "--json").stdout)["trading_state"] == "active"


def test_run_refuses_a_ledger_without_its_guard_triggers_and_writes_nothing(tmp_path: Path) -> None:
    """A dropped append-only trigger (and an edited migration): `run` refuses in one line, bytes unchanged."""
    config = write_config(tmp_path)
    ledger = tmp_path / "ledger.db"
    assert cli(config, "migrate").returncode == 0
    with sqlite3.connect(ledger) as conn:
        conn.execute("DROP TRIGGER fills_no_update")
    conn.close()
    before = ledger.read_bytes()
    one_line_error(cli(config, "run"), "not safe to run on", "fills", "UPDATE", "autoquant doctor")
    assert ledger.read_bytes() == before
    with sqlite3.connect(ledger) as conn:
        conn.execute("DROP TRIGGER schema_migrations_no_update")
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    conn.close()
    before = ledger.read_bytes()
    one_line_error(cli(config, "run"), "not safe to run on")
    assert ledger.read_bytes() == before
    with sqlite3.connect(ledger) as conn:
        triggers = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    conn.close()
    # Neither guard was silently re-created by a refused start.
    assert not {"fills_no_update", "schema_migrations_no_update"} & triggers


def test_operator_text_is_escaped_before_a_terminal(tmp_path: Path) -> None:
    """A pause reason holding an escape sequence and a newline is shown escaped by status and pause."""
    config = write_config(tmp_path)
    reason = "clear\x1b[2J\nforged line"
    paused = cli(config, "pause", "--reason", reason)
    assert paused.returncode == 0, paused.stderr
    text = cli(config, "status").stdout
    assert "\x1b" not in text and "clear\\x1b[2J\\nforged line" in text, text
    assert "\nforged line" not in text
    assert json.loads(cli(config, "status", "--json").stdout)["paused"][0]["reason"] == reason


def test_amounts_are_shown_to_the_cent(tmp_path: Path) -> None:
    """status's P&L line shows every amount with two places (no "0, 0.0000" mix)."""
    config = write_config(tmp_path)
    assert cli(config, "migrate").returncode == 0
    text = cli(config, "status").stdout
    assert "P&L today:       realized 0.00, fees 0.00, unrealized 0.00" in text, text
