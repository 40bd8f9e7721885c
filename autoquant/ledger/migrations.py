"""The migration runner: numbered SQL files applied in order, each inside one transaction.

Each applied file is recorded with its SHA-256. A recorded migration whose file changed since is
refused loudly (``MigrationMismatch``); a ledger that records a migration this version does not have
was written by a newer autoquant (``LedgerTooNew``). The bookkeeping table is itself append-only.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable

from autoquant.errors import LedgerError, LedgerTooNew, MigrationMismatch

#: The numbered SQL files ship inside the package (package data), found wherever it is installed.
MIGRATIONS_DIR: Traversable = resources.files("autoquant.ledger") / "sql"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_ns INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS schema_migrations_no_update BEFORE UPDATE ON schema_migrations
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on schema_migrations refused'); END;
CREATE TRIGGER IF NOT EXISTS schema_migrations_no_delete BEFORE DELETE ON schema_migrations
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on schema_migrations refused'); END;
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def discover(directory: Traversable = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in ``directory``; a missing or empty folder is a broken install, never "none"."""
    if not directory.is_dir():
        raise LedgerError(
            f"the ledger migrations are missing ({directory} is not a folder): the autoquant install is "
            "incomplete; reinstall it (`pip install --force-reinstall autoquant`)"
        )
    found: list[Migration] = []
    for path in sorted(directory.iterdir(), key=lambda entry: entry.name):
        if not path.name.endswith(".sql"):
            continue
        match = _NAME.fullmatch(path.name)
        if match is None:
            raise MigrationMismatch(f"{path}: migration files are named NNNN_name.sql")
        found.append(
            Migration(int(match[1]), path.name.removesuffix(".sql"), path.read_text(encoding="utf-8"))
        )
    if not found:
        raise LedgerError(
            f"no ledger migrations in {directory}: the autoquant install is incomplete; reinstall it"
        )
    # Gaps are allowed (branches number their migrations ahead of each other; a pending lower number is
    # applied after a higher one already recorded), two files under one number are not.
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions) or min(versions) < 1:
        raise MigrationMismatch(f"migrations in {directory} must each have their own number from 0001 up")
    return found


def applied(conn: sqlite3.Connection) -> dict[int, tuple[str, str]]:
    """Recorded migrations: version -> (name, checksum). Empty for a new ledger."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return {}
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    return {int(v): (str(n), str(c)) for v, n, c in rows}


def verify(conn: sqlite3.Connection, known: list[Migration]) -> list[Migration]:
    """Check what is recorded against the files; return the migrations still to apply."""
    recorded = applied(conn)
    by_version = {m.version: m for m in known}
    for version, (name, checksum) in sorted(recorded.items()):
        migration = by_version.get(version)
        if migration is None:
            raise LedgerTooNew(
                f"the ledger has migration {version:04d} ({name}) that this autoquant does not know: "
                "it was written by a newer version; upgrade autoquant"
            )
        if migration.checksum != checksum:
            raise MigrationMismatch(
                f"migration {migration.name} changed after it was applied to this ledger "
                f"(recorded sha256 {checksum[:12]}…, file {migration.checksum[:12]}…): "
                "restore the original file; released migrations are never edited, add a new one"
            )
    return [m for m in known if m.version not in recorded]


def migrate(conn: sqlite3.Connection, known: list[Migration] | None = None) -> list[Migration]:
    """Apply every pending migration, each atomically. ``conn`` must be in autocommit mode."""
    migrations = discover() if known is None else known
    conn.executescript(f"BEGIN IMMEDIATE;{_BOOTSTRAP}COMMIT;")
    pending = verify(conn, migrations)
    for migration in pending:
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{migration.sql}\n;")
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_ns) VALUES (?, ?, ?, ?)",
                (migration.version, migration.name, migration.checksum, time.time_ns()),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return pending
