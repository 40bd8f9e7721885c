"""``autoquant doctor``: is the config valid and the ledger whole? Lists every problem it finds.

The ledger check itself is ``autoquant.ledger.verify`` (``backup`` and ``restore`` verify with it too).
"""

from __future__ import annotations

from pathlib import Path

from autoquant.ledger import verify


def check_ledger(path: Path) -> list[str]:
    """Problems with the ledger file; an empty list means healthy. Never modifies the file."""
    if not path.exists():
        return [f"ledger {path} does not exist yet (any command that needs it creates it)"]
    return verify.problems(path)
