"""``autoquant doctor``: is the config valid and the ledger whole? Lists every problem it finds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from autoquant.errors import AutoquantError
from autoquant.ledger import connection, migrations


def check_ledger(path: Path) -> list[str]:
    """Problems with the ledger file; an empty list means healthy. Never modifies the file."""
    if not path.exists():
        return [f"ledger {path} does not exist yet (any command that needs it creates it)"]
    try:
        connection.check_file(path)
    except AutoquantError as error:
        return [str(error)]
    problems: list[str] = []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as error:
        return [f"cannot open {path}: {error}"]
    try:
        result = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            problems.extend(f"integrity_check: {line}" for line in result[:20])
        try:
            migrations.verify(conn, migrations.discover())
        except AutoquantError as error:
            problems.append(str(error))
        pending = {m.version for m in migrations.discover()} - set(migrations.applied(conn))
        if pending:
            problems.append(f"migrations not applied: {sorted(pending)} (run `autoquant migrate`)")
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        triggers = {
            (str(row[0]), str(row[1]).upper())
            for row in conn.execute(
                "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%RAISE(ABORT%'"
            )
        }
        for table in tables:
            for operation in ("UPDATE", "DELETE"):
                if not any(t == table and f"BEFORE {operation} ON" in sql for t, sql in triggers):
                    problems.append(f"table {table} has no trigger refusing {operation}")
    except sqlite3.DatabaseError as error:
        problems.append(f"{path} is corrupt: {error}")
    finally:
        conn.close()
    return problems
