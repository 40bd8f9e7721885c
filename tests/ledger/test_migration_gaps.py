"""Migration numbers may have gaps (branches number ahead of each other), never duplicates; a lower number
that arrives after a higher one was applied is applied then."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from autoquant.errors import MigrationMismatch
from autoquant.ledger import migrations


def _folder(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "sql"
    folder.mkdir(parents=True)
    for name in names:
        table = name.removesuffix(".sql").split("_", 1)[1]
        (folder / name).write_text(f"CREATE TABLE {table} (a);")
    return folder


def test_gaps_are_accepted_and_a_late_lower_number_is_applied(tmp_path: Path) -> None:
    """0001 and 0007 apply; when 0004 arrives later it is applied on the next migrate."""
    first = migrations.discover(_folder(tmp_path / "a", ["0001_one.sql", "0007_seven.sql"]))
    conn = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    assert [m.version for m in migrations.migrate(conn, first)] == [1, 7]
    later = migrations.discover(_folder(tmp_path / "b", ["0001_one.sql", "0004_four.sql", "0007_seven.sql"]))
    assert [m.version for m in migrations.migrate(conn, later)] == [4]
    assert sorted(migrations.applied(conn)) == [1, 4, 7]
    conn.close()


def test_two_files_under_one_number_are_refused(tmp_path: Path) -> None:
    """Two migrations numbered alike are a packaging error, named."""
    with pytest.raises(MigrationMismatch, match="their own number"):
        migrations.discover(_folder(tmp_path, ["0001_one.sql", "0002_a.sql", "0002_b.sql"]))
