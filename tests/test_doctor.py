"""`autoquant doctor`: a healthy ledger passes; every kind of damage is listed, and nothing is changed."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

from autoquant.ledger.connection import migrate_file
from autoquant.operator.cli import main


def write_config(tmp_path: Path, ledger: Path) -> Path:
    config = tmp_path / "c.toml"
    config.write_text(f'[ledger]\npath = "{ledger}"\n')
    return config


def run(config: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--config", str(config), "doctor"], out=out)
    return code, out.getvalue()


def test_healthy_ledger_passes(tmp_path: Path) -> None:
    """A freshly migrated ledger: exit 0 and 'ledger: ok'."""
    ledger = tmp_path / "l.db"
    migrate_file(ledger)
    code, text = run(write_config(tmp_path, ledger))
    assert code == 0
    assert "ledger: ok" in text


def test_dropped_guard_trigger_is_reported(tmp_path: Path) -> None:
    """A table whose append-only trigger was dropped is named, exit 1, and the file is not repaired."""
    ledger = tmp_path / "l.db"
    migrate_file(ledger)
    with sqlite3.connect(ledger) as conn:
        conn.execute("DROP TRIGGER fills_no_delete")
    before = ledger.read_bytes()
    code, text = run(write_config(tmp_path, ledger))
    assert code == 1
    assert "table fills has no trigger refusing DELETE" in text
    assert ledger.read_bytes() == before


def test_changed_migration_checksum_is_reported(tmp_path: Path) -> None:
    """A ledger whose recorded migration checksum differs from the file is reported, exit 1."""
    ledger = tmp_path / "l.db"
    migrate_file(ledger)
    with sqlite3.connect(ledger) as conn:
        conn.execute("DROP TRIGGER schema_migrations_no_update")
        conn.execute("UPDATE schema_migrations SET checksum = 'abc'")
    code, text = run(write_config(tmp_path, ledger))
    assert code == 1
    assert "changed after it was applied" in text
    assert "schema_migrations has no trigger refusing UPDATE" in text


def test_not_a_database_is_reported(tmp_path: Path) -> None:
    """A ledger path holding another kind of file is reported, exit 1, file untouched."""
    ledger = tmp_path / "l.db"
    ledger.write_text("not sqlite at all\n" * 50)
    before = ledger.read_bytes()
    code, text = run(write_config(tmp_path, ledger))
    assert code == 1
    assert "not an SQLite database" in text
    assert ledger.read_bytes() == before


def test_invalid_config_is_listed_as_a_problem(tmp_path: Path) -> None:
    """A config with an unknown key is listed by doctor with exit 1, naming the key."""
    config = tmp_path / "c.toml"
    config.write_text('[ledger]\npth = "x"\n')
    code, text = run(config)
    assert code == 1
    assert "problem: config:" in text
    assert "ledger.pth" in text


def test_configured_replica_that_holds_nothing_is_a_problem(tmp_path: Path) -> None:
    """[backup] litestream_config set but the replica is empty (Litestream not running): exit 1, said."""
    ledger = tmp_path / "l.db"
    migrate_file(ledger)
    litestream = tmp_path / "litestream.yml"
    replica = tmp_path / "replica"
    litestream.write_text(f"dbs:\n  - path: {ledger}\n    replica:\n      url: file://{replica}\n")
    config = tmp_path / "c.toml"
    config.write_text(f'[ledger]\npath = "{ledger}"\n[backup]\nlitestream_config = "{litestream}"\n')
    code, text = run(config)
    assert code == 1
    assert "problem: replica: " in text and "litestream replicate" in text
