"""The ledger's SQL, as plain functions over a ``sqlite3.Connection``.

Each runs on the connection's own thread inside a transaction (writes) or a read that the
``Ledger`` hands to its writer or reader thread; none of them commits. Current state is read from
the append-only rows without scanning history: an order's state is its latest event row (which carries
the state after it), a position is the latest fill row of its (strategy, symbol), and the open
orders are the newest checkpoint plus the few rows after it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from autoquant.domain.decisions import Decision
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order, OrderEvent, OrderStatus
from autoquant.domain.positions import Position, apply_fill
from autoquant.domain.values import to_ns
from autoquant.errors import LedgerError
from autoquant.ledger.records import RiskEvent

#: Write an open-orders checkpoint after this many closures or reservations since the last one.
CHECKPOINT_EVERY = 256

#: Select an order with its current state (the latest event row): use as SELECT {ORDER_COLUMNS} {ORDER_FROM}.
ORDER_COLUMNS = """
    o.client_order_id, o.decision_id, o.strategy_id, o.symbol, o.side, o.qty, o.order_type,
    o.time_in_force, o.limit_price, o.local_ts_ns,
    e.status_after, e.filled_qty_after, e.broker_order_id, e.order_reason_after, e.local_ts_ns,
    o.stop_price, o.replaces, o.notional, o.trail_price, o.trail_percent, o.extended_hours
"""
ORDER_FROM = """
    FROM orders o LEFT JOIN order_events e ON e.seq = (
        SELECT max(seq) FROM order_events WHERE client_order_id = o.client_order_id)
"""


def order_from_row(row: Sequence[Any]) -> Order:
    return Order(
        client_order_id=row[0],
        decision_id=row[1],
        strategy_id=row[2],
        symbol=row[3],
        side=row[4],
        qty=row[5],
        order_type=row[6],
        time_in_force=row[7],
        limit_price=row[8],
        created_ns=row[9],
        status=row[10] or OrderStatus.RESERVED,
        filled_qty=row[11] or "0",
        broker_order_id=row[12],
        reason=row[13],
        updated_ns=row[14] or row[9],
        stop_price=row[15],
        replaces=row[16],
        notional=row[17],
        trail_price=row[18],
        trail_percent=row[19],
        extended_hours=bool(row[20]),
    )


def read_open_orders(conn: sqlite3.Connection) -> list[Order]:
    orders = [load_order(conn, coid) for coid in sorted(open_ids(conn))]
    found = [order for order in orders if order is not None]
    return sorted(found, key=lambda order: (order.created_ns, order.client_order_id))


def read_positions(conn: sqlite3.Connection) -> dict[tuple[str, str], Position]:
    keys = conn.execute("SELECT strategy_id, symbol FROM position_keys ORDER BY seq").fetchall()
    return {(str(s), str(y)): latest_position(conn, str(s), str(y)) for s, y in keys}


def journal_seq(conn: sqlite3.Connection, kind: str, row_seq: int) -> int:
    """The global sequence number of the event row ``row_seq`` of ``kind`` (see 0003_journal.sql)."""
    row = conn.execute("SELECT seq FROM journal WHERE kind = ? AND row_seq = ?", (kind, row_seq)).fetchone()
    if row is None:
        raise LedgerError(f"{kind} {row_seq} has no journal entry: the ledger is not migrated")
    return int(row[0])


def read_last_control_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM controls").fetchone()
    return int(row[0]) if row else 0


def fill_from_row(row: Sequence[Any]) -> Fill:
    return Fill(
        execution_id=row[0],
        client_order_id=row[1],
        broker_order_id=row[2],
        symbol=row[3],
        side=row[4],
        qty=row[5],
        price=row[6],
        fee=row[7],
        broker_ts_ns=row[8],
        local_ts_ns=row[9],
    )


def insert_decision(conn: sqlite3.Connection, decision: Decision, local_ts_ns: int) -> bool:
    cursor = conn.execute(
        "INSERT INTO decisions (decision_id, strategy_id, symbol, action, reason, data_time_ns,"
        " inputs_json, intent_json, local_ts_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (decision_id) DO NOTHING",
        (
            decision.decision_id,
            decision.strategy_id,
            decision.symbol,
            decision.action.value,
            decision.reason,
            to_ns(decision.data_time),
            json.dumps(decision.inputs, default=str, sort_keys=True),
            None if decision.intent is None else decision.intent.model_dump_json(),
            local_ts_ns,
        ),
    )
    return cursor.rowcount == 1


def insert_order(conn: sqlite3.Connection, order: Order) -> bool:
    cursor = conn.execute(
        "INSERT INTO orders (client_order_id, decision_id, strategy_id, symbol, side, qty,"
        " order_type, time_in_force, limit_price, local_ts_ns, stop_price, replaces, notional,"
        " trail_price, trail_percent, extended_hours)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_order_id) DO NOTHING",
        (
            order.client_order_id,
            order.decision_id,
            order.strategy_id,
            order.symbol,
            order.side.value,
            str(order.qty),
            order.order_type.value,
            order.time_in_force.value,
            None if order.limit_price is None else str(order.limit_price),
            order.created_ns,
            None if order.stop_price is None else str(order.stop_price),
            order.replaces,
            _text(order.notional),
            _text(order.trail_price),
            _text(order.trail_percent),
            int(order.extended_hours),
        ),
    )
    if cursor.rowcount != 1:
        return False
    maybe_checkpoint(conn, order.created_ns)
    return True


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


def insert_risk_event(conn: sqlite3.Connection, event: RiskEvent) -> None:
    conn.execute(
        "INSERT INTO risk_events (decision_id, client_order_id, strategy_id, symbol, stage,"
        " allowed, reason, checks_json, local_ts_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.decision_id,
            event.client_order_id,
            event.strategy_id,
            event.symbol,
            event.stage,
            int(event.allowed),
            event.reason,
            event.checks_json(),
            event.local_ts_ns,
        ),
    )


def load_order(conn: sqlite3.Connection, client_order_id: str) -> Order | None:
    cursor = conn.execute(
        f"SELECT {ORDER_COLUMNS} {ORDER_FROM} WHERE o.client_order_id = ?", (client_order_id,)
    )
    row = cursor.fetchone()
    return None if row is None else order_from_row(row)


def insert_event(conn: sqlite3.Connection, order: Order, event: OrderEvent) -> int:
    """Append the transition; returns its ``order_events.seq``."""
    cursor = conn.execute(
        "INSERT INTO order_events (client_order_id, kind, status_after, filled_qty_after, broker_order_id,"
        " reason, order_reason_after, broker_ts_ns, local_ts_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            order.client_order_id,
            event.kind.value,
            order.status.value,
            str(order.filled_qty),
            order.broker_order_id,
            event.reason,
            order.reason,
            event.broker_ts_ns,
            event.local_ts_ns,
        ),
    )
    return int(cursor.lastrowid or 0)


def latest_position(conn: sqlite3.Connection, strategy_id: str, symbol: str) -> Position:
    cursor = conn.execute(
        "SELECT position_qty, position_avg_price, position_realized_pnl, position_fees FROM fills"
        " WHERE strategy_id = ? AND symbol = ? ORDER BY seq DESC LIMIT 1",
        (strategy_id, symbol),
    )
    row = cursor.fetchone()
    if row is None:
        return Position(symbol=symbol)
    return Position(symbol=symbol, qty=row[0], avg_price=row[1], realized_pnl=row[2], fees=row[3])


def insert_fill(conn: sqlite3.Connection, fill: Fill) -> tuple[str, Position] | None:
    """Append a fill; the (strategy id, position after it), or None if its execution id is known."""
    cursor = conn.execute("SELECT 1 FROM fills WHERE execution_id = ?", (fill.execution_id,))
    if cursor.fetchone() is not None:
        return None
    cursor = conn.execute(
        "SELECT strategy_id, symbol, side FROM orders WHERE client_order_id = ?", (fill.client_order_id,)
    )
    row = cursor.fetchone()
    if row is None:
        raise LedgerError(
            f"fill {fill.execution_id} is for order {fill.client_order_id}, which this ledger never reserved"
        )
    strategy_id, symbol, side = str(row[0]), str(row[1]), str(row[2])
    if symbol != fill.symbol or side != fill.side.value:
        raise LedgerError(
            f"fill {fill.execution_id} ({fill.side} {fill.symbol}) does not match order "
            f"{fill.client_order_id} ({side} {symbol})"
        )
    position = apply_fill(latest_position(conn, strategy_id, symbol), fill)
    conn.execute(
        "INSERT INTO fills (execution_id, client_order_id, broker_order_id, strategy_id, symbol, side, qty,"
        " price, fee, broker_ts_ns, local_ts_ns, position_qty, position_avg_price, position_realized_pnl,"
        " position_fees) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            fill.execution_id,
            fill.client_order_id,
            fill.broker_order_id,
            strategy_id,
            symbol,
            fill.side.value,
            str(fill.qty),
            str(fill.price),
            str(fill.fee),
            fill.broker_ts_ns,
            fill.local_ts_ns,
            str(position.qty),
            str(position.avg_price),
            str(position.realized_pnl),
            str(position.fees),
        ),
    )
    conn.execute(
        "INSERT INTO position_keys (strategy_id, symbol) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (strategy_id, symbol),
    )
    return strategy_id, position


def checkpoint_marks(conn: sqlite3.Connection) -> tuple[int, int, set[str]]:
    cursor = conn.execute(
        "SELECT orders_seq, closures_seq, open_ids_json FROM open_order_checkpoints ORDER BY seq DESC LIMIT 1"
    )
    row = cursor.fetchone()
    if row is None:
        return 0, 0, set()
    return int(row[0]), int(row[1]), set(json.loads(row[2]))


def open_ids(conn: sqlite3.Connection) -> set[str]:
    orders_seq, closures_seq, ids = checkpoint_marks(conn)
    cursor = conn.execute("SELECT client_order_id FROM orders WHERE seq > ?", (orders_seq,))
    ids.update(str(row[0]) for row in cursor.fetchall())
    cursor = conn.execute("SELECT client_order_id FROM order_closures WHERE seq > ?", (closures_seq,))
    ids.difference_update(str(row[0]) for row in cursor.fetchall())
    return ids


def maybe_checkpoint(conn: sqlite3.Connection, local_ts_ns: int) -> None:
    row = conn.execute(
        "SELECT orders_seq, closures_seq FROM open_order_checkpoints ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    orders_seq, closures_seq = (0, 0) if row is None else (int(row[0]), int(row[1]))
    cursor = conn.execute(
        "SELECT (SELECT coalesce(max(seq), 0) FROM orders),"
        " (SELECT coalesce(max(seq), 0) FROM order_closures)"
    )
    row = cursor.fetchone()
    assert row is not None
    max_orders, max_closures = int(row[0]), int(row[1])
    if (max_orders - orders_seq) + (max_closures - closures_seq) < CHECKPOINT_EVERY:
        return
    ids = open_ids(conn)
    conn.execute(
        "INSERT INTO open_order_checkpoints (orders_seq, closures_seq, open_ids_json, local_ts_ns)"
        " VALUES (?, ?, ?, ?)",
        (max_orders, max_closures, json.dumps(sorted(ids)), local_ts_ns),
    )
