"""Issue 10 item 6: inspection never creates, never crashes (real CLI processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.operator.helpers import cli, one_line_error, write_config


def test_a_ledger_path_holding_a_hash_is_read_as_named(tmp_path: Path) -> None:
    """`#` in the ledger path: status reads that file, says it is migrated, and creates nothing beside it."""
    config = write_config(tmp_path, ledger=str(tmp_path / "a#b.db"))
    assert cli(config, "migrate").returncode == 0
    before = files(tmp_path)
    result = cli(config, "status")
    assert result.returncode == 0, result.stderr
    assert "not migrated" not in result.stdout + result.stderr
    assert files(tmp_path) == before
    assert not (tmp_path / "a").exists()


def files(root: Path) -> list[str]:
    """The files in ``root``, but SQLite's WAL-mode side files (a reader may create them)."""
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(("-wal", "-shm")))


@pytest.mark.parametrize("command", ["orders", "fills", "logs"])
def test_a_since_too_far_back_is_refused_in_one_line(tmp_path: Path, command: str) -> None:
    """`--since 99999999999d`: one line naming --since, exit 2, no traceback."""
    config = write_config(tmp_path)
    assert cli(config, "migrate").returncode == 0
    (tmp_path / "autoquant.log").write_text("")
    one_line_error(cli(config, command, "--since", "99999999999d"), "--since", "shorter duration")


def test_logs_into_a_closed_pipe_end_quietly(tmp_path: Path) -> None:
    """`autoquant logs | head -1`: one line out, nothing on stderr (no "Broken pipe" advice)."""
    config = write_config(tmp_path)
    line = {"timestamp": "2026-01-05T14:30:00.000000Z", "level": "info", "event": "tick", "worker": "main"}
    (tmp_path / "autoquant.log").write_text((json.dumps(line) + "\n") * 50_000)
    command = f"{sys.executable} -m autoquant --config {config} logs | head -1"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.count("\n") == 1, result.stdout[:500]
    assert result.stderr == "", result.stderr


def test_reconcile_and_doctor_speak_json_and_words(tmp_path: Path) -> None:
    """`reconcile --json` and `doctor --json` are JSON; plain `reconcile` is words, not a Python dict."""
    config = write_config(tmp_path)
    words = cli(config, "reconcile")
    assert words.returncode == 0, words.stderr
    assert words.stdout.startswith("clean: ") and "{" not in words.stdout, words.stdout
    assert "order(s) checked" in words.stdout
    as_json = cli(config, "reconcile", "--json")
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert body["result"] == "clean" and "orders_checked" in body["summary"]
    doctor = cli(config, "doctor", "--json")
    assert doctor.returncode == 0, doctor.stdout
    assert json.loads(doctor.stdout)["ok"] is True
    help_text = cli(config, "reconcile", "--help").stdout
    assert "daemon stopped" in " ".join(help_text.split())
