"""Operator errors, run as a real ``python -m autoquant`` process: one line on stderr saying what is
wrong and what to do, a non-zero exit, no traceback, and the ledger's bytes unchanged."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoquant.runtime.lock import LedgerLock
from tests.test_inspection import build, make_too_new

BASE = """
[ledger]
path = "{root}/ledger.db"
[paper]
state_path = "{root}/paper.db"
[logging]
path = "{root}/autoquant.log"
"""
ALPACA = """
[broker]
kind = "alpaca"
url = "http://127.0.0.1:{port}"
timeout_s = 2
"""


def config(root: Path, extra: str = "") -> Path:
    path = root / "autoquant.toml"
    path.write_text(BASE.format(root=root) + extra)
    return path


def cli(
    config_path: Path, *args: str, env: dict[str, str] | None = None, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AUTOQUANT_"))}
    return subprocess.run(
        [sys.executable, "-m", "autoquant", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        env={**environment, **(env or {})},
        cwd=config_path.parent,
        timeout=timeout_s,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Non-zero exit, nothing on stdout, exactly one ``autoquant: …`` line on stderr naming the needles."""
    assert result.returncode != 0, result
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("autoquant: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """A ledger with known content, closed (checkpointed) so its bytes are stable."""
    path = tmp_path / "ledger.db"
    asyncio.run(build(path))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_missing_config_file(tmp_path: Path) -> None:
    """A --config that does not exist: one line naming the file and what to pass."""
    result = cli(tmp_path / "absent.toml", "status")
    assert_one_line(result, "absent.toml does not exist", "--config")


def test_config_with_an_unknown_key(tmp_path: Path) -> None:
    """A config key nobody knows: one line naming the key, nothing created."""
    path = config(tmp_path, "[risk]\nmax_order_notionall = 5\n")
    assert_one_line(cli(path, "status"), "unknown key 'risk.max_order_notionall'")
    assert not (tmp_path / "ledger.db").exists()


@pytest.mark.parametrize("command", [["run"], ["reconcile"]])
def test_ledger_held_by_a_running_daemon(tmp_path: Path, ledger: Path, command: list[str]) -> None:
    """run/reconcile while another process holds the daemon lock: one line naming the holder."""
    before = ledger.read_bytes()
    with LedgerLock(ledger):
        result = cli(config(tmp_path), *command)
    assert_one_line(result, "held by a running daemon", f"pid {os.getpid()}", "stop it first")
    assert ledger.read_bytes() == before


NEWER_COMMANDS = [["status"], ["orders"], ["trace", "aq-1"], ["pause", "--reason", "x"]]


@pytest.mark.parametrize("command", [*NEWER_COMMANDS, ["resolve", "inc-x", "--note", "n"], ["run"]])
def test_ledger_written_by_a_newer_version(tmp_path: Path, ledger: Path, command: list[str]) -> None:
    """A ledger with a migration this code does not know: one line saying to upgrade, ledger unchanged."""
    make_too_new(ledger)
    before = ledger.read_bytes()
    assert_one_line(cli(config(tmp_path), *command), "newer version", "upgrade autoquant")
    assert ledger.read_bytes() == before


@pytest.mark.parametrize(
    "content", [b"these are my notes, not a ledger\n", b"SQLite format 3\x00" + b"\xff" * 8192]
)
@pytest.mark.parametrize("command", [["status"], ["pause", "--reason", "x"], ["run"]])
def test_ledger_that_is_not_sqlite_or_is_corrupt(tmp_path: Path, content: bytes, command: list[str]) -> None:
    """A ledger path holding another file or a damaged database: one line, the file untouched."""
    path = tmp_path / "ledger.db"
    path.write_bytes(content)
    line = assert_one_line(cli(config(tmp_path), *command), str(path))
    assert "not an SQLite database" in line or "is corrupt" in line
    assert path.read_bytes() == content


@pytest.mark.parametrize("command", [["run"], ["reconcile"]])
def test_missing_alpaca_keys(tmp_path: Path, ledger: Path, command: list[str]) -> None:
    """kind = "alpaca" without APCA_* in the environment: one line naming both variables."""
    before = ledger.read_bytes()
    result = cli(config(tmp_path, ALPACA.format(port=free_port())), *command)
    assert_one_line(result, "APCA_API_KEY_ID", "APCA_API_SECRET_KEY")
    assert ledger.read_bytes() == before


def test_broker_unreachable_at_start_exits_within_the_timeout(tmp_path: Path) -> None:
    """run against a broker URL where nothing listens: exits non-zero within timeout_s + a few seconds,
    the last stderr line is the one-line reason, and everything else on stderr is a JSON log line."""
    path = config(tmp_path, ALPACA.format(port=free_port()))
    keys = {"APCA_API_KEY_ID": "key", "APCA_API_SECRET_KEY": "secret"}
    started = time.monotonic()
    result = cli(path, "run", env=keys, timeout_s=30)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert elapsed < 2 + 8, f"took {elapsed:.1f}s"
    *logs, last = result.stderr.strip().splitlines()
    assert last.startswith("autoquant: the broker cannot be reached at start"), last
    assert "check [broker] url" in last
    for line in logs:
        assert isinstance(json.loads(line), dict), line  # log lines, never a bare traceback
    assert "Traceback" not in result.stderr.replace('"traceback"', "")


@pytest.mark.parametrize(
    ("command", "needle", "hint"),
    [("orders", "garbage", "10m"), ("fills", "2026-01-05T10:00", "add Z for UTC")],
)
def test_since_garbage(tmp_path: Path, ledger: Path, command: str, needle: str, hint: str) -> None:
    """--since that is neither a duration nor a zoned ISO time: one line showing what works."""
    before = ledger.read_bytes()
    assert_one_line(cli(config(tmp_path), command, "--since", needle), "--since", hint)
    assert ledger.read_bytes() == before


@pytest.mark.parametrize("command", [["pause", "--reason", "x"], ["resume", "--reason", "x"]])
def test_unknown_strategy_for_pause_and_resume(tmp_path: Path, ledger: Path, command: list[str]) -> None:
    """--strategy that is not configured: one line listing the configured ones; nothing recorded."""
    before = ledger.read_bytes()
    line = assert_one_line(cli(config(tmp_path), *command, "--strategy", "sma-nope"), "'sma-nope'")
    assert "sma-aapl, sma-msft" in line
    assert ledger.read_bytes() == before


def test_empty_reason_is_refused(tmp_path: Path, ledger: Path) -> None:
    """halt --reason '  ': one line asking for a reason, no traceback from the model's validation."""
    before = ledger.read_bytes()
    assert_one_line(cli(config(tmp_path), "halt", "--reason", "  "), "--reason is empty")
    assert ledger.read_bytes() == before


def test_trace_of_an_unknown_id(tmp_path: Path, ledger: Path) -> None:
    """trace of an id nothing bears: exit 1 and one line saying so."""
    result = cli(config(tmp_path), "trace", "aq-nothing")
    assert result.returncode == 1
    assert_one_line(result, "nothing in the ledger bears the id 'aq-nothing'")


def test_resolve_of_an_unknown_incident(tmp_path: Path, ledger: Path) -> None:
    """resolve of an incident id the ledger does not have: one line pointing at `autoquant incidents`."""
    before = ledger.read_bytes()
    assert_one_line(cli(config(tmp_path), "resolve", "inc-nope", "--note", "n"), "no incident inc-nope")
    assert ledger.read_bytes() == before


@pytest.mark.parametrize("command", [["status"], ["incidents"], ["resolve", "inc-x", "--note", "n"]])
def test_inspection_of_a_missing_ledger_creates_nothing(tmp_path: Path, command: list[str]) -> None:
    """Looking at a ledger that does not exist says so in one line and does not create it."""
    assert_one_line(cli(config(tmp_path), *command), "no ledger at")
    assert not (tmp_path / "ledger.db").exists()


def test_ledger_path_under_a_file(tmp_path: Path) -> None:
    """A [ledger] path whose directory is a file: one line naming it, no traceback."""
    (tmp_path / "afile").write_text("")
    path = tmp_path / "autoquant.toml"
    path.write_text(BASE.format(root=tmp_path).replace("/ledger.db", "/afile/ledger.db"))
    assert_one_line(cli(path, "pause", "--reason", "x"), "afile", "check the paths")
