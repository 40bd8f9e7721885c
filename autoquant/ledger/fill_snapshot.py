"""``FillSnapshot``: the ledger's fills and positions read in one transaction, for reconciliation.

Reconciliation compares the broker's positions with the ledger's, and the broker's fills with the
ledger's execution ids. Fills keep landing while it reads (the order-stream worker appends them), so the
three ledger answers must come from one moment: the execution ids it knows, the positions those fills
made, and every fill appended after the cursor taken before the broker was asked. They are read here
from one snapshot of the database; the in-memory projection (which follows commits a little later, on
the loop) is not used, so it cannot disagree with the execution ids.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from autoquant.domain.fills import Fill
from autoquant.ledger.history import FILL_COLUMNS
from autoquant.ledger.rows import fill_from_row, read_positions

#: Execution ids asked about per statement (SQLite's host-parameter limit is far above).
CHUNK = 500


@dataclass(frozen=True)
class FillSnapshot:
    """One consistent view of the ledger's fills."""

    #: Among the execution ids asked about, those the ledger has.
    known_execution_ids: frozenset[str]
    #: Account-level quantity per symbol (summed over strategies), made by exactly the fills committed.
    positions: dict[str, Decimal]
    #: Every fill appended after the cursor ``fills_seq``, oldest first.
    later_fills: tuple[Fill, ...]
    #: The newest fill's seq in this snapshot.
    fills_seq: int


def read_fill_snapshot(
    conn: sqlite3.Connection, fills_seq: int, execution_ids: Iterable[str]
) -> FillSnapshot:
    """Run inside one read transaction (the reader thread's batch is one)."""
    wanted = list(dict.fromkeys(execution_ids))
    known: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        found = conn.execute(f"SELECT execution_id FROM fills WHERE execution_id IN ({marks})", chunk)
        known.update(str(row[0]) for row in found.fetchall())
    totals: dict[str, Decimal] = {}
    for (_, symbol), position in read_positions(conn).items():
        totals[symbol] = totals.get(symbol, Decimal(0)) + position.qty
    rows = conn.execute(f"SELECT {FILL_COLUMNS} FROM fills WHERE seq > ? ORDER BY seq", (fills_seq,))
    later = tuple(fill_from_row(row) for row in rows.fetchall())
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM fills").fetchone()
    return FillSnapshot(frozenset(known), totals, later, int(row[0]) if row else 0)
