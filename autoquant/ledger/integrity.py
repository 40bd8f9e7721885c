"""Is the ledger whole? ``autoquant doctor`` lists every problem (``verify.problems``), and
``autoquant run`` refuses to start on any but pending migrations (it applies those itself). The start's
check is the shallow one (schema, migrations, guard triggers): its cost does not grow with the history,
while ``doctor`` and backups run the whole-file ``integrity_check``."""

from __future__ import annotations

from pathlib import Path

from autoquant.errors import LedgerCorrupt
from autoquant.ledger import verify

#: The prefix of the one problem a start may cure (it migrates forward).
PENDING = "migrations not applied"


def check_ledger(path: Path) -> list[str]:
    """Problems with the ledger file; an empty list means healthy. Never modifies the file."""
    if not path.exists():
        return [f"ledger {path} does not exist yet (any command that needs it creates it)"]
    return verify.problems(path)


def refuse_unsafe(path: Path) -> None:
    """Raise ``LedgerCorrupt`` naming the first problem of an existing ledger a start must not run on
    (missing guard triggers, an edited or unknown migration, corruption); pending migrations pass."""
    if not path.exists() or path.stat().st_size == 0:
        return
    problems = [p for p in verify.problems(path, deep=False) if not p.startswith(PENDING)]
    if problems:
        raise LedgerCorrupt(
            f"ledger {path} is not safe to run on: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
            + "; nothing was written: `autoquant doctor` lists every problem, restore the ledger from backup"
        )
