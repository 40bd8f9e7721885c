"""The ledger: the one object through which every durable write goes, and the current-state reads.

Writes are appends (the database's triggers refuse anything else). Current state is a projection:
an order's state is its latest event row (which carries the state after it), a position is the
latest fill row of its (strategy, symbol), the open orders are the newest checkpoint plus the few
rows after it, so start-up cost grows with open orders and positions, not with history.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite

from autoquant.domain.broker import BrokerAccount
from autoquant.domain.controls import Control, ControlKind, ControlState, fold_controls
from autoquant.domain.decisions import Decision
from autoquant.domain.errors import IllegalTransition
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order, OrderEvent, OrderStatus, apply
from autoquant.domain.positions import Position, apply_fill
from autoquant.domain.values import to_ns
from autoquant.errors import LedgerError
from autoquant.ledger.connection import GroupCommit, open_connection, open_readonly_connection
from autoquant.ledger.records import Incident, ReconciliationRun, RiskEvent

#: Write an open-orders checkpoint after this many closures or reservations since the last one.
CHECKPOINT_EVERY = 256

#: Select an order with its current state (the latest event row): use as SELECT {ORDER_COLUMNS} {ORDER_FROM}.
ORDER_COLUMNS = """
    o.client_order_id, o.decision_id, o.strategy_id, o.symbol, o.side, o.qty, o.order_type,
    o.time_in_force, o.limit_price, o.local_ts_ns,
    e.status_after, e.filled_qty_after, e.broker_order_id, e.order_reason_after, e.local_ts_ns
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
    )


@dataclass(frozen=True)
class CancelRequest:
    seq: int
    target: str
    reason: str
    actor: str
    local_ts_ns: int


@dataclass(frozen=True)
class Book:
    """The current state the risk gate and the strategies need, read in one go."""

    positions: dict[tuple[str, str], Position]
    open_orders: list[Order]
    control_seq: int
    #: (first, peak, latest) equity recorded since the day started, or None.
    equity: tuple[Decimal, Decimal, Decimal] | None

    def account_positions(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for (_, symbol), position in self.positions.items():
            totals[symbol] = totals.get(symbol, Decimal(0)) + position.qty
        return totals


@dataclass(frozen=True)
class EventResult:
    """What appending a broker update did."""

    order: Order | None
    changed: bool
    fill_recorded: bool | None = None  # None: no fill in the update; False: a duplicate
    illegal: IllegalTransition | None = None


class Ledger:
    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._db = GroupCommit(conn, path)

    @classmethod
    async def open(cls, path: Path) -> Ledger:
        """Open (creating and migrating on first use) the ledger at ``path``."""
        return cls(await open_connection(path), path)

    @classmethod
    async def open_readonly(cls, path: Path) -> Ledger:
        """Open an existing ledger for reading only: never creates, migrates or writes it."""
        return cls(await open_readonly_connection(path), path)

    async def close(self) -> None:
        await self._db.drain()
        await self._conn.close()

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- decisions and reservations ------------------------------------------------------------

    async def record_decision(self, decision: Decision, local_ts_ns: int) -> bool:
        """Append a decision; False if this decision id was already recorded (a replay)."""

        def write(conn: sqlite3.Connection) -> bool:
            return _insert_decision(conn, decision, local_ts_ns)

        return await self._db.write(write)

    async def record_decision_outcome(
        self, decision: Decision, local_ts_ns: int, risk: RiskEvent | None, order: Order | None
    ) -> tuple[bool, bool]:
        """The decision, its risk check and its reservation in one transaction (one fsync).

        Returns (decision recorded, order reserved); a replayed decision records and reserves nothing.
        """
        if order is not None and order.status is not OrderStatus.RESERVED:
            raise ValueError("only a RESERVED order can be reserved")

        def write(conn: sqlite3.Connection) -> tuple[bool, bool]:
            if not _insert_decision(conn, decision, local_ts_ns):
                return False, False
            if risk is not None:
                _insert_risk_event(conn, risk)
            reserved = order is not None and _insert_order(conn, order)
            return True, reserved

        return await self._db.write(write)

    async def reserve(self, order: Order) -> bool:
        """Durably reserve an order under its client order id; False if that id is already taken."""
        if order.status is not OrderStatus.RESERVED:
            raise ValueError("only a RESERVED order can be reserved")

        def write(conn: sqlite3.Connection) -> bool:
            return _insert_order(conn, order)

        return await self._db.write(write)

    # -- order events and fills ----------------------------------------------------------------

    async def apply_event(self, event: OrderEvent) -> EventResult:
        """Apply one order event. An event the table refuses is returned as ``illegal``, unapplied."""
        return await self.apply_update(event, None)

    async def append_fill(self, fill: Fill) -> bool:
        """Append one fill; False (and nothing written) if its execution id is already recorded."""
        return await self._db.write(lambda conn: _insert_fill(conn, fill))

    async def apply_update(self, event: OrderEvent, fill: Fill | None) -> EventResult:
        """A broker update: its fill (counted once by execution id) and its event, in one transaction.

        The fill is broker truth and is kept even when the event is illegal in the order's state.
        """

        def write(conn: sqlite3.Connection) -> EventResult:
            fill_recorded = None if fill is None else _insert_fill(conn, fill)
            order = _load_order(conn, event.client_order_id)
            if order is None:
                raise LedgerError(f"no reserved order {event.client_order_id} for event {event.kind}")
            try:
                updated = apply(order, event)
            except IllegalTransition as error:
                return EventResult(order, False, fill_recorded, error)
            if updated is order:
                return EventResult(order, False, fill_recorded)
            _insert_event(conn, updated, event)
            if updated.status.is_terminal and not order.status.is_terminal:
                conn.execute(
                    "INSERT INTO order_closures (client_order_id, status, local_ts_ns) VALUES (?, ?, ?)",
                    (updated.client_order_id, updated.status.value, event.local_ts_ns),
                )
                _maybe_checkpoint(conn, event.local_ts_ns)
            return EventResult(updated, True, fill_recorded)

        return await self._db.write(write)

    # -- controls, incidents, risk, reconciliation -----------------------------------------------

    async def append_control(self, control: Control) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO controls (kind, scope, reason, actor, local_ts_ns) VALUES (?, ?, ?, ?, ?)",
                (control.kind.value, control.scope, control.reason, control.actor, control.local_ts_ns),
            )

        await self._db.write(write)

    async def open_incident(
        self,
        *,
        kind: str,
        subject: str,
        scope: str,
        message: str,
        action: str,
        details: dict[str, Any],
        local_ts_ns: int,
    ) -> tuple[str, bool]:
        """Open an incident unless one of the same kind and subject is still open.

        Returns the incident id and whether it is new.
        """

        def write(conn: sqlite3.Connection) -> tuple[str, bool]:
            cursor = conn.execute(
                "SELECT i.incident_id FROM incidents i WHERE i.kind = ? AND i.subject = ? AND NOT EXISTS"
                " (SELECT 1 FROM incident_resolutions r WHERE r.incident_id = i.incident_id)",
                (kind, subject),
            )
            existing = cursor.fetchone()
            if existing is not None:
                return str(existing[0]), False
            incident_id = f"inc-{uuid.uuid4().hex[:16]}"
            conn.execute(
                "INSERT INTO incidents (incident_id, kind, subject, scope, message, action, details_json,"
                " local_ts_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    incident_id,
                    kind,
                    subject,
                    scope,
                    message,
                    action,
                    json.dumps(details, default=str, sort_keys=True),
                    local_ts_ns,
                ),
            )
            return incident_id, True

        return await self._db.write(write)

    async def resolve_incident(self, incident_id: str, actor: str, note: str, local_ts_ns: int) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute("SELECT 1 FROM incidents WHERE incident_id = ?", (incident_id,))
            if cursor.fetchone() is None:
                raise LedgerError(f"no incident {incident_id}: `autoquant incidents` lists them")
            cursor = conn.execute(
                "INSERT INTO incident_resolutions (incident_id, actor, note, local_ts_ns)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (incident_id) DO NOTHING",
                (incident_id, actor, note, local_ts_ns),
            )
            return cursor.rowcount == 1

        return await self._db.write(write)

    async def append_risk_event(self, event: RiskEvent) -> None:
        def write(conn: sqlite3.Connection) -> None:
            _insert_risk_event(conn, event)

        await self._db.write(write)

    async def record_reconciliation(self, run: ReconciliationRun) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO reconciliations (trigger, clean, summary_json, started_ns, finished_ns)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    run.trigger,
                    int(run.clean),
                    json.dumps(run.summary, default=str, sort_keys=True),
                    run.started_ns,
                    run.finished_ns,
                ),
            )

        await self._db.write(write)

    async def record_account(self, account: BrokerAccount, local_ts_ns: int) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO account_snapshots (cash, equity, buying_power, local_ts_ns) VALUES (?, ?, ?, ?)",
                (str(account.cash), str(account.equity), str(account.buying_power), local_ts_ns),
            )

        await self._db.write(write)

    async def request_cancel(self, target: str, reason: str, actor: str, local_ts_ns: int) -> int:
        """An operator's cancel request (a client order id, or ``*`` for all open orders)."""

        def write(conn: sqlite3.Connection) -> int:
            if target != "*" and _load_order(conn, target) is None:
                raise LedgerError(f"no order {target}: `autoquant orders --open` lists the open ones")
            cursor = conn.execute(
                "INSERT INTO cancel_requests (target, reason, actor, local_ts_ns) VALUES (?, ?, ?, ?)",
                (target, reason, actor, local_ts_ns),
            )
            return int(cursor.lastrowid or 0)

        return await self._db.write(write)

    async def pending_cancel_requests(self) -> list[CancelRequest]:
        """Requests the daemon has not carried out yet, oldest first."""

        def read(conn: sqlite3.Connection) -> list[CancelRequest]:
            rows = conn.execute(
                "SELECT r.seq, r.target, r.reason, r.actor, r.local_ts_ns FROM cancel_requests r"
                " WHERE NOT EXISTS (SELECT 1 FROM cancel_outcomes o WHERE o.request_seq = r.seq)"
                " ORDER BY r.seq"
            ).fetchall()
            return [CancelRequest(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]

        return await self._db.read(read)

    async def record_cancel_outcome(
        self, request_seq: int, canceled: int, detail: str, local_ts_ns: int
    ) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO cancel_outcomes (request_seq, canceled, detail, local_ts_ns) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (request_seq) DO NOTHING",
                (request_seq, canceled, detail, local_ts_ns),
            )

        await self._db.write(write)

    # -- reads ---------------------------------------------------------------------------------

    async def get_order(self, client_order_id: str) -> Order | None:
        return await self._db.read(lambda conn: _load_order(conn, client_order_id))

    async def get_order_by_broker_id(self, broker_order_id: str) -> Order | None:
        def read(conn: sqlite3.Connection) -> Order | None:
            cursor = conn.execute(
                "SELECT client_order_id FROM order_events WHERE broker_order_id = ? LIMIT 1",
                (broker_order_id,),
            )
            row = cursor.fetchone()
            return None if row is None else _load_order(conn, str(row[0]))

        return await self._db.read(read)

    async def orders_for_decision(self, decision_id: str) -> list[Order]:
        def read(conn: sqlite3.Connection) -> list[Order]:
            cursor = conn.execute(
                f"SELECT {ORDER_COLUMNS} {ORDER_FROM} WHERE o.decision_id = ? ORDER BY o.seq",
                (decision_id,),
            )
            return [order_from_row(row) for row in cursor.fetchall()]

        return await self._db.read(read)

    async def open_orders(self) -> list[Order]:
        """Every order not yet in a terminal state (RESERVED and UNKNOWN included), oldest first."""
        return await self._db.read(_read_open_orders)

    async def positions(self) -> dict[tuple[str, str], Position]:
        """The position of every (strategy id, symbol) that ever traded, flat ones included."""
        return await self._db.read(_read_positions)

    async def account_positions(self) -> dict[str, Decimal]:
        """Quantity per symbol across all strategies (what the broker should hold)."""
        totals: dict[str, Decimal] = {}
        for (_, symbol), position in (await self.positions()).items():
            totals[symbol] = totals.get(symbol, Decimal(0)) + position.qty
        return totals

    async def known_execution_ids(self, execution_ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(execution_ids))

        def read(conn: sqlite3.Connection) -> set[str]:
            known: set[str] = set()
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                cursor = conn.execute(
                    f"SELECT execution_id FROM fills WHERE execution_id IN ({marks})", chunk
                )
                known.update(str(row[0]) for row in cursor.fetchall())
            return known

        return await self._db.read(read)

    async def fills_for_order(self, client_order_id: str) -> list[Fill]:
        def read(conn: sqlite3.Connection) -> list[Fill]:
            cursor = conn.execute(
                "SELECT execution_id, client_order_id, broker_order_id, symbol, side, qty, price, fee,"
                " broker_ts_ns, local_ts_ns FROM fills WHERE client_order_id = ? ORDER BY seq",
                (client_order_id,),
            )
            return [fill_from_row(row) for row in cursor.fetchall()]

        return await self._db.read(read)

    async def control_state(self) -> ControlState:
        def read(conn: sqlite3.Connection) -> ControlState:
            cursor = conn.execute("SELECT kind, scope, reason, actor, local_ts_ns FROM controls ORDER BY seq")
            rows = cursor.fetchall()
            return fold_controls(
                Control(kind=ControlKind(k), scope=s, reason=r, actor=a, local_ts_ns=t)
                for k, s, r, a, t in rows
            )

        return await self._db.read(read)

    async def last_control_seq(self) -> int:
        """A cheap change marker: the daemon re-reads controls when this moves."""
        return await self._db.read(_read_last_control_seq)

    async def incidents(self, *, open_only: bool = False) -> list[Incident]:
        def read(conn: sqlite3.Connection) -> list[Incident]:
            cursor = conn.execute(
                "SELECT i.incident_id, i.kind, i.subject, i.scope, i.message, i.action, i.details_json,"
                " i.local_ts_ns, r.actor, r.note, r.local_ts_ns FROM incidents i"
                " LEFT JOIN incident_resolutions r ON r.incident_id = i.incident_id ORDER BY i.seq"
            )
            result = [
                Incident(
                    incident_id=row[0],
                    kind=row[1],
                    subject=row[2],
                    scope=row[3],
                    message=row[4],
                    action=row[5],
                    details=json.loads(row[6]),
                    local_ts_ns=row[7],
                    resolved=row[8] is not None,
                    resolved_by=row[8],
                    resolution_note=row[9],
                    resolved_ns=row[10],
                )
                for row in cursor.fetchall()
            ]
            return [i for i in result if not (open_only and i.resolved)]

        return await self._db.read(read)

    async def last_reconciliation(self) -> ReconciliationRun | None:
        def read(conn: sqlite3.Connection) -> ReconciliationRun | None:
            cursor = conn.execute(
                "SELECT trigger, clean, summary_json, started_ns, finished_ns FROM reconciliations"
                " ORDER BY seq DESC LIMIT 1"
            )
            row = cursor.fetchone()
            if row is None:
                return None
            return ReconciliationRun(
                trigger=row[0],
                clean=bool(row[1]),
                summary=json.loads(row[2]),
                started_ns=row[3],
                finished_ns=row[4],
            )

        return await self._db.read(read)

    async def equity_since(self, since_ns: int) -> tuple[Decimal, Decimal, Decimal] | None:
        """(first, peak, latest) account equity recorded at or after ``since_ns``, or None."""
        return await self._db.read(lambda conn: _read_equity_since(conn, since_ns))

    async def book(self, day_start_ns: int) -> Book:
        """Positions, open orders, the controls marker and today's equity, in one read (the hot path
        of every decision and every pre-submit check)."""

        def read(conn: sqlite3.Connection) -> Book:
            return Book(
                positions=_read_positions(conn),
                open_orders=_read_open_orders(conn),
                control_seq=_read_last_control_seq(conn),
                equity=_read_equity_since(conn, day_start_ns),
            )

        return await self._db.read(read)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read-only query for the inspection commands."""

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            cursor = conn.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()]

        return await self._db.read(read)


def _read_open_orders(conn: sqlite3.Connection) -> list[Order]:
    orders = [_load_order(conn, coid) for coid in sorted(_open_ids(conn))]
    found = [order for order in orders if order is not None]
    return sorted(found, key=lambda order: (order.created_ns, order.client_order_id))


def _read_positions(conn: sqlite3.Connection) -> dict[tuple[str, str], Position]:
    keys = conn.execute("SELECT strategy_id, symbol FROM position_keys ORDER BY seq").fetchall()
    return {(str(s), str(y)): _position(conn, str(s), str(y)) for s, y in keys}


def _read_last_control_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM controls").fetchone()
    return int(row[0]) if row else 0


def _read_equity_since(conn: sqlite3.Connection, since_ns: int) -> tuple[Decimal, Decimal, Decimal] | None:
    cursor = conn.execute(
        "SELECT equity FROM account_snapshots WHERE local_ts_ns >= ? ORDER BY seq", (since_ns,)
    )
    values = [Decimal(row[0]) for row in cursor.fetchall()]
    if not values:
        return None
    return values[0], max(values), values[-1]


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


def _insert_decision(conn: sqlite3.Connection, decision: Decision, local_ts_ns: int) -> bool:
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


def _insert_order(conn: sqlite3.Connection, order: Order) -> bool:
    cursor = conn.execute(
        "INSERT INTO orders (client_order_id, decision_id, strategy_id, symbol, side, qty,"
        " order_type, time_in_force, limit_price, local_ts_ns)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_order_id) DO NOTHING",
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
        ),
    )
    if cursor.rowcount != 1:
        return False
    _maybe_checkpoint(conn, order.created_ns)
    return True


def _insert_risk_event(conn: sqlite3.Connection, event: RiskEvent) -> None:
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
            json.dumps(event.checks, default=str),
            event.local_ts_ns,
        ),
    )


def _load_order(conn: sqlite3.Connection, client_order_id: str) -> Order | None:
    cursor = conn.execute(
        f"SELECT {ORDER_COLUMNS} {ORDER_FROM} WHERE o.client_order_id = ?", (client_order_id,)
    )
    row = cursor.fetchone()
    return None if row is None else order_from_row(row)


def _insert_event(conn: sqlite3.Connection, order: Order, event: OrderEvent) -> None:
    conn.execute(
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


def _position(conn: sqlite3.Connection, strategy_id: str, symbol: str) -> Position:
    cursor = conn.execute(
        "SELECT position_qty, position_avg_price, position_realized_pnl, position_fees FROM fills"
        " WHERE strategy_id = ? AND symbol = ? ORDER BY seq DESC LIMIT 1",
        (strategy_id, symbol),
    )
    row = cursor.fetchone()
    if row is None:
        return Position(symbol=symbol)
    return Position(symbol=symbol, qty=row[0], avg_price=row[1], realized_pnl=row[2], fees=row[3])


def _insert_fill(conn: sqlite3.Connection, fill: Fill) -> bool:
    cursor = conn.execute("SELECT 1 FROM fills WHERE execution_id = ?", (fill.execution_id,))
    if cursor.fetchone() is not None:
        return False
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
    position = apply_fill(_position(conn, strategy_id, symbol), fill)
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
    return True


def _checkpoint_marks(conn: sqlite3.Connection) -> tuple[int, int, set[str]]:
    cursor = conn.execute(
        "SELECT orders_seq, closures_seq, open_ids_json FROM open_order_checkpoints ORDER BY seq DESC LIMIT 1"
    )
    row = cursor.fetchone()
    if row is None:
        return 0, 0, set()
    return int(row[0]), int(row[1]), set(json.loads(row[2]))


def _open_ids(conn: sqlite3.Connection) -> set[str]:
    orders_seq, closures_seq, ids = _checkpoint_marks(conn)
    cursor = conn.execute("SELECT client_order_id FROM orders WHERE seq > ?", (orders_seq,))
    ids.update(str(row[0]) for row in cursor.fetchall())
    cursor = conn.execute("SELECT client_order_id FROM order_closures WHERE seq > ?", (closures_seq,))
    ids.difference_update(str(row[0]) for row in cursor.fetchall())
    return ids


def _maybe_checkpoint(conn: sqlite3.Connection, local_ts_ns: int) -> None:
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
    ids = _open_ids(conn)
    conn.execute(
        "INSERT INTO open_order_checkpoints (orders_seq, closures_seq, open_ids_json, local_ts_ns)"
        " VALUES (?, ?, ?, ?)",
        (max_orders, max_closures, json.dumps(sorted(ids)), local_ts_ns),
    )
