"""The ledger's read side: current state and history, read through the group-commit reader.

Split from ``Ledger`` so the writes and the reads each stay one readable module; ``Ledger`` inherits
these, so callers see one object. Every method here only reads (``GroupCommit.read``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from autoquant.domain.controls import Control, ControlKind, ControlState, fold_controls
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order
from autoquant.domain.positions import Position
from autoquant.ledger.connection import GroupCommit
from autoquant.ledger.records import Incident, ReconciliationRun
from autoquant.ledger.rows import (
    ORDER_COLUMNS,
    ORDER_FROM,
    fill_from_row,
    load_order,
    order_from_row,
    read_equity_since,
    read_last_control_seq,
    read_open_orders,
    read_positions,
)

__all__ = ["Book", "LedgerReads"]


def account_totals(positions: dict[tuple[str, str], Position]) -> dict[str, Decimal]:
    """Quantity per symbol summed over the strategies that hold it."""
    totals: dict[str, Decimal] = {}
    for (_, symbol), position in positions.items():
        totals[symbol] = totals.get(symbol, Decimal(0)) + position.qty
    return totals


@dataclass(frozen=True)
class Book:
    """The current state the risk gate and the strategies need, read in one go."""

    positions: dict[tuple[str, str], Position]
    open_orders: list[Order]
    control_seq: int
    #: (first, peak, latest) equity recorded since the day started, or None.
    equity: tuple[Decimal, Decimal, Decimal] | None

    def account_positions(self) -> dict[str, Decimal]:
        return account_totals(self.positions)


class LedgerReads:
    """The read-only half of the ledger, over the same ``GroupCommit`` the writes go through."""

    def __init__(self, db: GroupCommit, path: Path) -> None:
        self._db = db
        self.path = path

    # -- reads ---------------------------------------------------------------------------------

    async def get_order(self, client_order_id: str) -> Order | None:
        return await self._db.read(lambda conn: load_order(conn, client_order_id))

    async def get_order_by_broker_id(self, broker_order_id: str) -> Order | None:
        def read(conn: sqlite3.Connection) -> Order | None:
            cursor = conn.execute(
                "SELECT client_order_id FROM order_events WHERE broker_order_id = ? LIMIT 1",
                (broker_order_id,),
            )
            row = cursor.fetchone()
            return None if row is None else load_order(conn, str(row[0]))

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
        return await self._db.read(read_open_orders)

    async def positions(self) -> dict[tuple[str, str], Position]:
        """The position of every (strategy id, symbol) that ever traded, flat ones included."""
        return await self._db.read(read_positions)

    async def account_positions(self) -> dict[str, Decimal]:
        """Quantity per symbol across all strategies (what the broker should hold)."""
        return account_totals(await self.positions())

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
        return await self._db.read(read_last_control_seq)

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
        return await self._db.read(lambda conn: read_equity_since(conn, since_ns))

    async def book(self, day_start_ns: int) -> Book:
        """Positions, open orders, the controls marker and today's equity, in one read (the hot path
        of every decision and every pre-submit check)."""

        def read(conn: sqlite3.Connection) -> Book:
            return Book(
                positions=read_positions(conn),
                open_orders=read_open_orders(conn),
                control_seq=read_last_control_seq(conn),
                equity=read_equity_since(conn, day_start_ns),
            )

        return await self._db.read(read)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read-only query for the inspection commands."""

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            cursor = conn.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()]

        return await self._db.read(read)
