"""Raw SQL against a ledger file, for tests only: the ledger itself speaks in named reads."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autoquant.ledger import LedgerReader


def _rows(path: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return [tuple(row) for row in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def query(db: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows from the ledger file opened read-only; [] while it does not exist or is not migrated yet."""
    if not db.exists():
        return []
    try:
        return _rows(str(db), sql, params)
    except sqlite3.OperationalError:
        return []


async def ledger_query(ledger: LedgerReader, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read from the ledger's file on a separate read-only connection."""
    return await asyncio.to_thread(_rows, str(ledger.path), sql, params)
