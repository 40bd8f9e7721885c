"""Reads for the operator's HTTP surface and the alert worker, and the alert writes: plain functions
over a ``sqlite3.Connection`` (``LedgerReader`` and ``Ledger`` expose each as a named method)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal

from autoquant.domain.order_terms import ORDER_TERMS


@dataclass(frozen=True)
class DecisionRecord:
    seq: int
    decision_id: str
    strategy_id: str
    symbol: str
    action: str
    reason: str
    data_time_ns: int
    close: str | None
    local_ts_ns: int


@dataclass(frozen=True)
class AlertRecord:
    alert_id: str
    event: str
    severity: str
    dedup_key: str
    source_seq: int | None
    title: str
    body: str
    local_ts_ns: int


def read_decisions(
    conn: sqlite3.Connection,
    *,
    strategy_id: str | None,
    symbol: str | None,
    action: str | None,
    reason: str | None,
    limit: int,
) -> list[DecisionRecord]:
    """The newest ``limit`` decisions matching the filters, oldest first."""
    where, args = [], []
    for column, value in (("strategy_id", strategy_id), ("symbol", symbol), ("action", action)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if reason is not None:
        where.append("reason = ?")
        args.append(reason)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        "SELECT seq, decision_id, strategy_id, symbol, action, reason, data_time_ns,"
        f" json_extract(inputs_json, '$.close'), local_ts_ns FROM decisions {clause}"
        " ORDER BY seq DESC LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [
        DecisionRecord(
            int(s), str(d), str(st), str(sy), str(a), str(r), int(t), None if c is None else str(c), int(ts)
        )
        for s, d, st, sy, a, r, t, c, ts in reversed(rows)
    ]


def read_equity_curve(conn: sqlite3.Connection, since_ns: int, points: int) -> list[tuple[int, Decimal]]:
    """Account equity snapshots since ``since_ns``, thinned to at most ``points`` (evenly by row)."""
    count_row = conn.execute(
        "SELECT count(*) FROM account_snapshots WHERE local_ts_ns >= ?", (since_ns,)
    ).fetchone()
    count = int(count_row[0]) if count_row else 0
    step = max(1, count // max(1, points))
    rows = conn.execute(
        "SELECT local_ts_ns, equity FROM (SELECT local_ts_ns, equity, row_number() OVER (ORDER BY seq) AS n"
        " FROM account_snapshots INDEXED BY account_snapshots_by_time WHERE local_ts_ns >= ?)"
        " WHERE (n - 1) % ? = 0 ORDER BY n",  # INDEXED BY: the range, not the whole table (see equity_rows)
        (since_ns, step),
    ).fetchall()
    return [(int(t), Decimal(str(e))) for t, e in rows]


def read_alert_cursor(conn: sqlite3.Connection) -> int | None:
    """The journal seq of the newest event an alert was raised for (None: no alert yet)."""
    row = conn.execute("SELECT max(source_seq) FROM alerts").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def read_alerts(conn: sqlite3.Connection, limit: int) -> list[tuple[AlertRecord, list[tuple[str, str, int]]]]:
    """The newest ``limit`` alerts, oldest first, each with its deliveries (channel, outcome, attempts)."""
    rows = conn.execute(
        "SELECT alert_id, event, severity, dedup_key, source_seq, title, body, local_ts_ns FROM alerts"
        " ORDER BY seq DESC LIMIT ?",
        (limit,),
    ).fetchall()
    result = []
    for row in reversed(rows):
        record = AlertRecord(
            str(row[0]), str(row[1]), str(row[2]), str(row[3]), row[4], str(row[5]), str(row[6]), int(row[7])
        )
        deliveries = [
            (str(c), str(o), int(a))
            for c, o, a in conn.execute(
                "SELECT channel, outcome, attempts FROM alert_deliveries WHERE alert_id = ? ORDER BY seq",
                (record.alert_id,),
            )
        ]
        result.append((record, deliveries))
    return result


def insert_alert(conn: sqlite3.Connection, alert: AlertRecord) -> bool:
    cursor = conn.execute(
        "INSERT INTO alerts (alert_id, event, severity, dedup_key, source_seq, title, body, local_ts_ns)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_id) DO NOTHING",
        (
            alert.alert_id,
            alert.event,
            alert.severity,
            alert.dedup_key,
            alert.source_seq,
            alert.title,
            alert.body,
            alert.local_ts_ns,
        ),
    )
    return cursor.rowcount == 1


def insert_alert_delivery(
    conn: sqlite3.Connection, alert_id: str, channel: str, outcome: str, attempts: int, detail: str, ts: int
) -> None:
    conn.execute(
        "INSERT INTO alert_deliveries (alert_id, channel, outcome, attempts, detail, local_ts_ns)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (alert_id, channel, outcome, attempts, detail, ts),
    )


@dataclass(frozen=True)
class ManualOrder:
    """An operator's order request; ``client_order_id`` is the caller's idempotency key. ``qty`` is
    zero exactly when ``notional`` (dollars) stands in for it."""

    client_order_id: str
    strategy_id: str
    symbol: str
    side: str
    qty: Decimal
    order_type: str
    time_in_force: str
    limit_price: Decimal | None
    reason: str
    actor: str
    local_ts_ns: int
    stop_price: Decimal | None = None
    notional: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    extended_hours: bool = False

    def same_order(self, other: ManualOrder) -> bool:
        """The same order (who asked, why and when aside): a repeat of one request."""
        return all(getattr(self, k) == getattr(other, k) for k in ORDER_TERMS)


_MANUAL_COLUMNS = (
    "client_order_id, strategy_id, symbol, side, qty, order_type, time_in_force, limit_price, reason, actor,"
    " local_ts_ns, stop_price, notional, trail_price, trail_percent, extended_hours"
)


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _manual(row: tuple[object, ...]) -> ManualOrder:
    return ManualOrder(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        Decimal(str(row[4])),
        str(row[5]),
        str(row[6]),
        _decimal(row[7]),
        str(row[8]),
        str(row[9]),
        int(str(row[10])),
        stop_price=_decimal(row[11]),
        notional=_decimal(row[12]),
        trail_price=_decimal(row[13]),
        trail_percent=_decimal(row[14]),
        extended_hours=bool(row[15]),
    )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def insert_manual_order(conn: sqlite3.Connection, order: ManualOrder) -> tuple[bool, ManualOrder]:
    """Record the request unless its client order id is taken; (new?, the request under that id)."""
    row = conn.execute(
        f"SELECT {_MANUAL_COLUMNS} FROM manual_orders WHERE client_order_id = ?", (order.client_order_id,)
    ).fetchone()
    if row is not None:
        return False, _manual(tuple(row))
    conn.execute(
        f"INSERT INTO manual_orders ({_MANUAL_COLUMNS}) VALUES ({', '.join('?' * 16)})",
        (
            order.client_order_id,
            order.strategy_id,
            order.symbol,
            order.side,
            str(order.qty),
            order.order_type,
            order.time_in_force,
            _text(order.limit_price),
            order.reason,
            order.actor,
            order.local_ts_ns,
            _text(order.stop_price),
            _text(order.notional),
            _text(order.trail_price),
            _text(order.trail_percent),
            int(order.extended_hours),
        ),
    )
    return True, order


def read_pending_manual_orders(conn: sqlite3.Connection) -> list[ManualOrder]:
    """Requests the daemon has not reserved yet, oldest first."""
    rows = conn.execute(
        f"SELECT {_MANUAL_COLUMNS} FROM manual_orders m WHERE NOT EXISTS"
        " (SELECT 1 FROM orders o WHERE o.client_order_id = m.client_order_id) ORDER BY m.seq"
    ).fetchall()
    return [_manual(tuple(r)) for r in rows]
