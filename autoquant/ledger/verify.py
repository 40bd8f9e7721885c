"""Is a ledger file whole? One check for ``autoquant doctor``, ``backup`` (the copy) and ``restore`` (SRC).

``problems`` opens the file read-only (``immutable`` when asked, for a copy nobody else has open) and
lists every problem: not SQLite, ``integrity_check`` failures, migrations changed, unknown (written by a
newer autoquant) or not applied, and tables without the triggers that refuse UPDATE and DELETE. An
empty list means healthy. It never modifies the file.

``deep=False`` leaves out ``integrity_check``, which reads every page of the file (15 s on a ledger of
a million fills): it is what ``autoquant run`` checks at start, whose cost must not grow with the
history. The shallow check still reads the schema (a damaged first page or schema fails it), the
migrations and the guard triggers; damage deeper in the history is found by ``doctor`` and by each
backup's verification, and any read that meets a damaged page fails as corrupt.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from autoquant.errors import AutoquantError
from autoquant.ledger import connection, migrations

#: Litestream keeps its own bookkeeping tables in the database it replicates (``_litestream_seq``,
#: ``_litestream_lock``); they are not ledger tables and carry no append-only triggers.
LITESTREAM_PREFIX = "_litestream_"


def problems(
    path: Path, *, immutable: bool = False, allow_pending: bool = False, deep: bool = True
) -> list[str]:
    """Problems with the ledger at ``path`` (which must exist); [] means healthy. ``allow_pending``
    accepts a ledger written by an older autoquant (migrations still to apply), as a backup may be;
    ``deep=False`` skips the whole-file ``integrity_check`` (start-up's bounded check)."""
    try:
        connection.check_file(path)
    except AutoquantError as error:
        return [str(error)]
    if path.stat().st_size == 0:
        return [f"{path} is empty, not a ledger"]
    uri = connection.readonly_uri(path) + ("&immutable=1" if immutable else "")
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as error:
        return [f"cannot open {path}: {error}"]
    try:
        return _problems(conn, path, allow_pending, deep)
    except sqlite3.DatabaseError as error:
        return [f"{path} is corrupt: {error}"]
    finally:
        conn.close()


def _problems(conn: sqlite3.Connection, path: Path, allow_pending: bool, deep: bool) -> list[str]:
    found: list[str] = []
    if deep:
        result = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            found.extend(f"integrity_check: {line}" for line in result[:20])
            return found
    known = migrations.discover()
    try:
        migrations.verify(conn, known)
    except AutoquantError as error:
        found.append(str(error))
    recorded = migrations.applied(conn)
    if not recorded:
        found.append(f"{path} has no schema_migrations table: it is not an autoquant ledger")
        return found
    pending = sorted({m.version for m in known} - set(recorded))
    if pending and not allow_pending:
        found.append(f"migrations not applied: {pending} (run `autoquant migrate`)")
    tables = [
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        if not str(row[0]).startswith(LITESTREAM_PREFIX)
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
                found.append(f"table {table} has no trigger refusing {operation}")
    return found
