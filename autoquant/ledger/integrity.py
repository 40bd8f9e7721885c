"""Is the ledger whole? Every problem found, without modifying the file: ``autoquant doctor`` lists them,
and ``autoquant run`` refuses to start on any but pending migrations (it applies those itself)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from autoquant.errors import AutoquantError, LedgerCorrupt
from autoquant.ledger import connection, migrations
from autoquant.ledger.connection import readonly_uri


def refuse_unsafe(path: Path) -> None:
    """Raise ``LedgerCorrupt`` naming the first problem of an existing ledger a start must not run on
    (missing guard triggers, an edited or unknown migration, corruption); pending migrations pass."""
    if not path.exists() or path.stat().st_size == 0:
        return
    problems = [p for p in check_ledger(path) if not p.startswith(PENDING)]
    if problems:
        raise LedgerCorrupt(
            f"ledger {path} is not safe to run on: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
            + "; nothing was written: `autoquant doctor` lists every problem, restore the ledger from backup"
        )


#: The prefix of the one problem a start may cure (it migrates forward).
PENDING = "migrations not applied"


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
        conn = sqlite3.connect(readonly_uri(path), uri=True)
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
        pending = set(range(1, len(migrations.discover()) + 1)) - set(migrations.applied(conn))
        if pending:
            problems.append(f"{PENDING}: {sorted(pending)} (run `autoquant migrate`)")
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
