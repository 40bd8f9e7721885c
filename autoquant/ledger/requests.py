"""The SQL of operator requests carried out at the broker (``broker_requests``: replace an order,
flatten the account) and their outcomes. Plain functions over a connection, run on the ledger's
reader or writer thread; see 0008_replaces_and_flatten.sql."""

from __future__ import annotations

import json
import sqlite3

from autoquant.domain.orders import Order, OrderStatus
from autoquant.ledger.records import BrokerRequest
from autoquant.ledger.rows import insert_order

_COLUMNS = "r.seq, r.kind, r.target, r.params_json, r.reason, r.actor, r.local_ts_ns"


def _request(row: tuple[object, ...]) -> BrokerRequest:
    params = json.loads(str(row[3]))
    return BrokerRequest(
        int(str(row[0])),
        str(row[1]),
        str(row[2]),
        {str(k): str(v) for k, v in params.items()},
        str(row[4]),
        str(row[5]),
        int(str(row[6])),
    )


def insert_request(
    conn: sqlite3.Connection,
    kind: str,
    target: str,
    params: dict[str, str],
    reason: str,
    actor: str,
    local_ts_ns: int,
) -> int:
    cursor = conn.execute(
        "INSERT INTO broker_requests (kind, target, params_json, reason, actor, local_ts_ns)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (kind, target, json.dumps(params, sort_keys=True), reason, actor, local_ts_ns),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def insert_outcome(
    conn: sqlite3.Connection, request_seq: int, ok: bool, detail: str, local_ts_ns: int
) -> bool:
    """The request's outcome; False (nothing written) if it already has one."""
    cursor = conn.execute(
        "INSERT INTO broker_request_outcomes (request_seq, ok, detail, local_ts_ns) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (request_seq) DO NOTHING",
        (request_seq, int(ok), detail, local_ts_ns),
    )
    return cursor.rowcount == 1


def reserve_replacement(conn: sqlite3.Connection, order: Order, request_seq: int, local_ts_ns: int) -> bool:
    """Reserve the order that replaces ``order.replaces`` and close the request that asked for it, in
    one transaction; False if the request already has an outcome (carried out before a restart)."""
    if order.status is not OrderStatus.RESERVED or order.replaces is None:
        raise ValueError("a replacement is a RESERVED order that names the order it replaces")
    if not insert_outcome(
        conn, request_seq, True, f"replacement {order.client_order_id} reserved", local_ts_ns
    ):
        return False
    insert_order(conn, order)
    return True


def read_pending(conn: sqlite3.Connection) -> list[BrokerRequest]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM broker_requests r WHERE NOT EXISTS"
        " (SELECT 1 FROM broker_request_outcomes o WHERE o.request_seq = r.seq) ORDER BY r.seq"
    ).fetchall()
    return [_request(tuple(row)) for row in rows]


def read_request(conn: sqlite3.Connection, seq: int) -> tuple[BrokerRequest, tuple[bool, str] | None] | None:
    """One request and its outcome (ok, detail), if it has one."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM broker_requests r WHERE r.seq = ?", (seq,)).fetchone()
    if row is None:
        return None
    done = conn.execute(
        "SELECT ok, detail FROM broker_request_outcomes WHERE request_seq = ?", (seq,)
    ).fetchone()
    return _request(tuple(row)), None if done is None else (bool(done[0]), str(done[1]))


def flatten_covers(conn: sqlite3.Connection, created_ns: int, margin_ns: int) -> bool:
    """Whether a flatten was under way when a broker order was created at ``created_ns``: requested no
    later than ``margin_ns`` after it, and not finished (or finished no earlier than ``margin_ns``
    before it). Closing orders the broker placed for it are the daemon's to record, not strangers."""
    row = conn.execute(
        "SELECT 1 FROM broker_requests r LEFT JOIN broker_request_outcomes o ON o.request_seq = r.seq"
        " WHERE r.kind = 'flatten' AND r.local_ts_ns <= ? AND (o.seq IS NULL OR o.local_ts_ns >= ?)"
        " LIMIT 1",
        (created_ns + margin_ns, created_ns - margin_ns),
    ).fetchone()
    return row is not None
