"""The ledger: the one object through which every durable write goes, and the current-state reads.

The reads live in ``reads.LedgerReads``, which ``Ledger`` extends; ``Book`` is re-exported from here.

Writes are appends (the database's triggers refuse anything else); each public method is one
transaction (batched with concurrent ones by ``GroupCommit``) built from the SQL functions in
``rows``. Current state is a projection read without scanning history (see ``rows``), so start-up
cost grows with open orders and positions, not with the length of history.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from autoquant.domain.broker import BrokerAccount
from autoquant.domain.controls import Control
from autoquant.domain.decisions import Decision
from autoquant.domain.errors import IllegalTransition
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order, OrderEvent, OrderStatus, apply
from autoquant.errors import LedgerError
from autoquant.ledger.connection import GroupCommit, open_connection, open_readonly_connection
from autoquant.ledger.reads import Book, LedgerReads
from autoquant.ledger.records import ReconciliationRun, RiskEvent
from autoquant.ledger.rows import (
    ORDER_COLUMNS,
    ORDER_FROM,
    fill_from_row,
    insert_decision,
    insert_event,
    insert_fill,
    insert_order,
    insert_risk_event,
    load_order,
    maybe_checkpoint,
    order_from_row,
)

__all__ = [
    "ORDER_COLUMNS",
    "ORDER_FROM",
    "Book",
    "CancelRequest",
    "EventResult",
    "Ledger",
    "fill_from_row",
    "order_from_row",
]


@dataclass(frozen=True)
class CancelRequest:
    seq: int
    target: str
    reason: str
    actor: str
    local_ts_ns: int


@dataclass(frozen=True)
class EventResult:
    """What appending a broker update did."""

    order: Order | None
    changed: bool
    fill_recorded: bool | None = None  # None: no fill in the update; False: a duplicate
    illegal: IllegalTransition | None = None


class Ledger(LedgerReads):
    """The reads (``LedgerReads``) plus construction, open/close and every durable write."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        super().__init__(GroupCommit(conn, path), path)
        self._conn = conn

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
            return insert_decision(conn, decision, local_ts_ns)

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
            if not insert_decision(conn, decision, local_ts_ns):
                return False, False
            if risk is not None:
                insert_risk_event(conn, risk)
            reserved = order is not None and insert_order(conn, order)
            return True, reserved

        return await self._db.write(write)

    async def reserve(self, order: Order) -> bool:
        """Durably reserve an order under its client order id; False if that id is already taken."""
        if order.status is not OrderStatus.RESERVED:
            raise ValueError("only a RESERVED order can be reserved")

        def write(conn: sqlite3.Connection) -> bool:
            return insert_order(conn, order)

        return await self._db.write(write)

    # -- order events and fills ----------------------------------------------------------------

    async def apply_event(self, event: OrderEvent) -> EventResult:
        """Apply one order event. An event the table refuses is returned as ``illegal``, unapplied."""
        return await self.apply_update(event, None)

    async def append_fill(self, fill: Fill) -> bool:
        """Append one fill; False (and nothing written) if its execution id is already recorded."""
        return await self._db.write(lambda conn: insert_fill(conn, fill))

    async def apply_update(self, event: OrderEvent, fill: Fill | None) -> EventResult:
        """A broker update: its fill (counted once by execution id) and its event, in one transaction.

        The fill is broker truth and is kept even when the event is illegal in the order's state.
        """

        def write(conn: sqlite3.Connection) -> EventResult:
            fill_recorded = None if fill is None else insert_fill(conn, fill)
            order = load_order(conn, event.client_order_id)
            if order is None:
                raise LedgerError(f"no reserved order {event.client_order_id} for event {event.kind}")
            try:
                updated = apply(order, event)
            except IllegalTransition as error:
                return EventResult(order, False, fill_recorded, error)
            if updated is order:
                return EventResult(order, False, fill_recorded)
            insert_event(conn, updated, event)
            if updated.status.is_terminal and not order.status.is_terminal:
                conn.execute(
                    "INSERT INTO order_closures (client_order_id, status, local_ts_ns) VALUES (?, ?, ?)",
                    (updated.client_order_id, updated.status.value, event.local_ts_ns),
                )
                maybe_checkpoint(conn, event.local_ts_ns)
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
            insert_risk_event(conn, event)

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
            if target != "*" and load_order(conn, target) is None:
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
