"""The SQL of restores as the restored ledger remembers them: which restore is still open (no clean
reconciliation since), and the broker orders adopted after it. Plain functions over a connection,
run on the ledger's reader or writer thread."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from autoquant.domain.orders import Order, OrderStatus
from autoquant.ledger.rows import insert_order


@dataclass(frozen=True)
class RestoreRecord:
    """A restore this ledger came from: the restored point (global sequence, local time of its last
    event) and when the restore was made."""

    seq: int
    backup_journal_seq: int
    backup_last_ns: int
    local_ts_ns: int


def read_open_restore(conn: sqlite3.Connection) -> RestoreRecord | None:
    """The latest restore, unless a clean reconciliation run has been recorded after it."""
    row = conn.execute(
        "SELECT r.seq, r.backup_journal_seq, r.backup_last_ns, r.local_ts_ns, j.seq FROM restores r"
        " JOIN journal j ON j.kind = 'restore' AND j.row_seq = r.seq ORDER BY r.seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    closed = conn.execute(
        "SELECT 1 FROM reconciliations c JOIN journal j ON j.kind = 'reconciliation' AND j.row_seq = c.seq"
        " WHERE c.clean = 1 AND j.seq > ? LIMIT 1",
        (int(row[4]),),
    ).fetchone()
    return None if closed else RestoreRecord(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def insert_adoption(
    conn: sqlite3.Connection, order: Order, broker_order_id: str, restore_seq: int, local_ts_ns: int
) -> bool:
    """Reserve ``order`` (no decision: it is unknown) and record that it was adopted; False if the
    ledger already has this client order id."""
    if order.status is not OrderStatus.RESERVED or order.decision_id is not None:
        raise ValueError("an adopted order is reserved without a decision")
    if not insert_order(conn, order):
        return False
    conn.execute(
        "INSERT INTO restore_adoptions (restore_seq, client_order_id, broker_order_id, local_ts_ns)"
        " VALUES (?, ?, ?, ?)",
        (restore_seq, order.client_order_id, broker_order_id, local_ts_ns),
    )
    return True
