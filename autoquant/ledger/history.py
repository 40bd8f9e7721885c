"""History reads, as SQL functions over a ``sqlite3.Connection``: the global event journal, and what
inspection, trace and reconciliation ask of the past. ``LedgerReader`` exposes each as a named method.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from autoquant.domain.broker import BrokerAccount
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order
from autoquant.ledger.rows import ORDER_COLUMNS, ORDER_FROM, fill_from_row, order_from_row

#: Journal kind -> the table its rows live in (see 0003_journal.sql).
EVENT_TABLES: dict[str, str] = {
    "decision": "decisions",
    "risk_event": "risk_events",
    "order_reserved": "orders",
    "order_event": "order_events",
    "fill": "fills",
    "control": "controls",
    "incident": "incidents",
    "incident_resolved": "incident_resolutions",
    "reconciliation": "reconciliations",
    "account_snapshot": "account_snapshots",
    "cancel_requested": "cancel_requests",
    "cancel_outcome": "cancel_outcomes",
    "backup": "backups",
    "restore": "restores",
    "order_adopted": "restore_adoptions",
}
FILL_COLUMNS = (
    "execution_id, client_order_id, broker_order_id, symbol, side, qty, price, fee, broker_ts_ns, local_ts_ns"
)


@dataclass(frozen=True)
class LedgerEvent:
    """One ledger event in global order: ``seq`` is its journal seq, ``kind`` a key of ``EVENT_TABLES``,
    ``fields`` its row by column name (JSON columns decoded, ``_json`` dropped from their names)."""

    seq: int
    kind: str
    row_seq: int
    local_ts_ns: int
    fields: dict[str, Any]


@dataclass(frozen=True)
class StoredFill:
    """A fill as the ledger holds it, with the strategy it was booked to and the position after it."""

    seq: int
    strategy_id: str
    fill: Fill
    position_qty: Decimal


@dataclass(frozen=True)
class RealizedMarks:
    """Running realized P&L and fees of one (strategy, symbol): latest, and as of before a time."""

    strategy_id: str
    symbol: str
    latest_pnl: Decimal
    latest_fees: Decimal
    before_pnl: Decimal
    before_fees: Decimal


def _marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items)) or "NULL"


def _decoded(cursor: sqlite3.Cursor, row: Sequence[Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for (name, *_), value in zip(cursor.description, row, strict=True):
        if name.endswith("_json"):
            fields[name.removesuffix("_json")] = None if value is None else json.loads(value)
        else:
            fields[name] = value
    return fields


def read_events(conn: sqlite3.Connection, journal: list[tuple[int, str, int, int]]) -> list[LedgerEvent]:
    """The event rows behind journal entries (seq, kind, row_seq, ts), in the entries' order."""
    by_kind: dict[str, list[int]] = {}
    for _, kind, row_seq, _ in journal:
        by_kind.setdefault(kind, []).append(row_seq)
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for kind, seqs in by_kind.items():
        table = EVENT_TABLES[kind]
        for start in range(0, len(seqs), 500):
            chunk = seqs[start : start + 500]
            cursor = conn.execute(f"SELECT * FROM {table} WHERE seq IN ({_marks(chunk)})", chunk)
            for row in cursor.fetchall():
                fields = _decoded(cursor, row)
                rows[(kind, int(fields["seq"]))] = fields
    return [
        LedgerEvent(seq, kind, row_seq, ts, rows[(kind, row_seq)])
        for seq, kind, row_seq, ts in journal
        if (kind, row_seq) in rows
    ]


def read_events_after(conn: sqlite3.Connection, seq: int, limit: int) -> list[LedgerEvent]:
    journal = conn.execute(
        "SELECT seq, kind, row_seq, local_ts_ns FROM journal WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
    ).fetchall()
    return read_events(conn, [(int(a), str(b), int(c), int(d)) for a, b, c, d in journal])


def read_last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()
    return int(row[0]) if row else 0


def read_related_ids(conn: sqlite3.Connection, identifier: str) -> tuple[set[str], set[str], set[str]]:
    """(decision ids, client order ids, broker order ids) connected to ``identifier``."""
    decisions: set[str] = set()
    if conn.execute("SELECT 1 FROM decisions WHERE decision_id = ?", (identifier,)).fetchone():
        decisions.add(identifier)
    orders = {
        str(row[0])
        for row in conn.execute(
            "SELECT client_order_id FROM orders WHERE client_order_id = ? OR decision_id = ?"
            " UNION SELECT client_order_id FROM order_events WHERE broker_order_id = ?"
            " UNION SELECT client_order_id FROM fills WHERE broker_order_id = ?",
            (identifier,) * 4,
        )
    }
    oids = sorted(orders)
    for (decision_id,) in conn.execute(
        f"SELECT decision_id FROM orders WHERE client_order_id IN ({_marks(oids)})", oids
    ):
        if decision_id:
            decisions.add(str(decision_id))
    brokers = {
        str(row[0])
        for row in conn.execute(
            f"SELECT broker_order_id FROM order_events WHERE client_order_id IN ({_marks(oids)})"
            f" UNION SELECT broker_order_id FROM fills WHERE client_order_id IN ({_marks(oids)})",
            [*oids, *oids],
        )
        if row[0]
    }
    return decisions, orders, brokers


def read_story(
    conn: sqlite3.Connection, decision_ids: Iterable[str], order_ids: Iterable[str], subjects: Iterable[str]
) -> list[LedgerEvent]:
    """Every event of one story (decisions, their risk checks, orders, transitions, fills, incidents
    about any of ``subjects``), in global order."""
    dids, oids, subs = sorted(decision_ids), sorted(order_ids), sorted(subjects)
    wheres = {
        "decision": (f"decision_id IN ({_marks(dids)})", dids),
        "risk_event": (
            f"decision_id IN ({_marks(dids)}) OR client_order_id IN ({_marks(oids)})",
            [*dids, *oids],
        ),
        "order_reserved": (f"client_order_id IN ({_marks(oids)})", oids),
        "order_event": (f"client_order_id IN ({_marks(oids)})", oids),
        "fill": (f"client_order_id IN ({_marks(oids)})", oids),
        "incident": (f"subject IN ({_marks(subs)})", subs),
    }
    journal: list[tuple[int, str, int, int]] = []
    for kind, (where, params) in wheres.items():
        table = EVENT_TABLES[kind]
        journal += [
            (int(a), kind, int(b), int(c))
            for a, b, c in conn.execute(
                # CROSS JOIN: find the story's rows by their own indexes first, then their journal
                # entries (the other way round reads every journal entry of the kind).
                f"SELECT j.seq, t.seq, j.local_ts_ns FROM {table} t CROSS JOIN journal j"
                f" ON j.kind = ? AND j.row_seq = t.seq WHERE {where}",
                [kind, *params],
            )
        ]
    journal.sort()
    return read_events(conn, journal)


def _filters(symbol: str | None, since_ns: int | None, prefix: str = "") -> tuple[str, list[Any]]:
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if symbol:
        where.append(f"{prefix}symbol = ?")
        params.append(symbol)
    if since_ns is not None:
        where.append(f"{prefix}local_ts_ns >= ?")
        params.append(since_ns)
    return " AND ".join(where), params


def read_orders(
    conn: sqlite3.Connection, symbol: str | None, since_ns: int | None
) -> list[tuple[Order, list[tuple[Decimal, Decimal]]]]:
    """Every order (created at or after ``since_ns``) with its current state and its fills' (qty, price)."""
    where, params = _filters(symbol, since_ns, "o.")
    rows = conn.execute(
        f"SELECT {ORDER_COLUMNS}, (SELECT group_concat(qty || '@' || price, ' ') FROM fills f"
        f" WHERE f.client_order_id = o.client_order_id) {ORDER_FROM} WHERE {where} ORDER BY o.seq",
        params,
    ).fetchall()
    result = []
    for row in rows:
        pairs = [tuple(Decimal(v) for v in pair.split("@")) for pair in (row[-1] or "").split(" ") if pair]
        result.append((order_from_row(row), [(q, p) for q, p in pairs]))
    return result


def read_fills(conn: sqlite3.Connection, symbol: str | None, since_ns: int | None) -> list[StoredFill]:
    where, params = _filters(symbol, since_ns)
    rows = conn.execute(
        f"SELECT seq, strategy_id, position_qty, {FILL_COLUMNS} FROM fills WHERE {where} ORDER BY seq", params
    ).fetchall()
    return [StoredFill(int(r[0]), str(r[1]), fill_from_row(r[3:]), Decimal(r[2])) for r in rows]


def read_last_fill_prices(conn: sqlite3.Connection) -> dict[str, Decimal]:
    rows = conn.execute(
        "SELECT symbol, price FROM fills WHERE seq IN (SELECT max(seq) FROM fills GROUP BY symbol)"
    ).fetchall()
    return {str(symbol): Decimal(price) for symbol, price in rows}


def read_latest_account(conn: sqlite3.Connection) -> tuple[BrokerAccount, int] | None:
    """The newest account snapshot (the kill switch's poll or a reconciliation's read) and its time."""
    row = conn.execute(
        "SELECT cash, equity, buying_power, local_ts_ns FROM account_snapshots ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    cash, equity, buying_power, at_ns = row
    account = BrokerAccount(cash=Decimal(cash), equity=Decimal(equity), buying_power=Decimal(buying_power))
    return account, int(at_ns)


def read_realized_marks(conn: sqlite3.Connection, before_ns: int) -> list[RealizedMarks]:
    """Per (strategy, symbol), two indexed lookups: the latest running totals and the last before."""
    rows = conn.execute(
        "SELECT k.strategy_id, k.symbol,"
        " (SELECT position_realized_pnl || ' ' || position_fees FROM fills f"
        "   WHERE f.strategy_id = k.strategy_id AND f.symbol = k.symbol ORDER BY f.seq DESC LIMIT 1),"
        " (SELECT position_realized_pnl || ' ' || position_fees FROM fills f"
        "   WHERE f.strategy_id = k.strategy_id AND f.symbol = k.symbol AND f.local_ts_ns < ?"
        "   ORDER BY f.seq DESC LIMIT 1)"
        " FROM position_keys k ORDER BY k.strategy_id, k.symbol",
        (before_ns,),
    ).fetchall()
    marks = []
    for strategy_id, symbol, latest, before in rows:
        latest_pnl, latest_fees = (Decimal(v) for v in str(latest).split(" "))
        before_pnl, before_fees = (
            (Decimal(v) for v in str(before).split(" ")) if before else (Decimal(0),) * 2
        )
        marks.append(
            RealizedMarks(str(strategy_id), str(symbol), latest_pnl, latest_fees, before_pnl, before_fees)
        )
    return marks


def read_fills_after(conn: sqlite3.Connection, fills_seq: int, after_ns: int) -> list[Fill]:
    """Fills appended after ``fills_seq`` and timed (broker time, else local) after ``after_ns``."""
    rows = conn.execute(
        f"SELECT {FILL_COLUMNS} FROM fills WHERE seq > ? AND coalesce(broker_ts_ns, local_ts_ns) > ?"
        " ORDER BY seq",
        (fills_seq, after_ns),
    ).fetchall()
    return [fill_from_row(row) for row in rows]


def read_count(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0
