"""Raw SQL against a ledger file, for tests only: the ledger itself speaks in named reads."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any

from autoquant.ledger import LedgerReader


def _rows(path: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as conn:
        return [tuple(row) for row in conn.execute(sql, params).fetchall()]


async def ledger_query(ledger: LedgerReader, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read from the ledger's file on a separate read-only connection."""
    return await asyncio.to_thread(_rows, str(ledger.path), sql, params)
