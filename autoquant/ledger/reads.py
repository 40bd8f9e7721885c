"""``LedgerReader``: the ledger opened for reading, with every read the rest of autoquant needs as a
named method. It has no write method at all; ``Ledger`` (in ``ledger``) is a reader plus the writes.

Reads run on their own read-only connection and thread (``ReaderThread``): under WAL they never wait
behind a commit's fsync. The reader answers from disk; ``Ledger`` answers the hot reads (positions,
open orders, controls, the kill switch's triggers, ``book``) from its in-memory projection.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from autoquant.domain.broker import BrokerAccount
from autoquant.domain.controls import Control, ControlKind, ControlState, fold_controls
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order
from autoquant.domain.positions import Position
from autoquant.domain.strategy import StrategyState
from autoquant.ledger import history, requests, seen, surface
from autoquant.ledger.connection import connect_reader, translate
from autoquant.ledger.fill_snapshot import FillSnapshot, read_fill_snapshot
from autoquant.ledger.history import LedgerEvent, RealizedMarks, StoredFill
from autoquant.ledger.projection import Projection
from autoquant.ledger.records import (
    BrokerRequest,
    CancelRequest,
    Incident,
    ReconciliationCursor,
    ReconciliationRun,
)
from autoquant.ledger.restores import RestoreRecord, read_open_restore
from autoquant.ledger.rows import (
    ORDER_COLUMNS,
    ORDER_FROM,
    fill_from_row,
    load_order,
    order_from_row,
    read_last_control_seq,
    read_open_orders,
    read_positions,
)
from autoquant.ledger.threads import ReaderThread

__all__ = ["Book", "LedgerReader", "account_totals"]


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
    #: (first, peak, latest) equity recorded since the day started, or None.
    equity: tuple[Decimal, Decimal, Decimal] | None

    def account_positions(self) -> dict[str, Decimal]:
        return account_totals(self.positions)


def _fold_controls(conn: sqlite3.Connection) -> ControlState:
    rows = conn.execute(
        "SELECT kind, scope, reason, actor, local_ts_ns FROM controls ORDER BY seq"
    ).fetchall()
    return fold_controls(
        Control(kind=ControlKind(k), scope=s, reason=r, actor=a, local_ts_ns=t) for k, s, r, a, t in rows
    )


class LedgerReader:
    """A ledger opened read-only: never creates, migrates or writes the file."""

    def __init__(self, reader: ReaderThread, path: Path) -> None:
        self._reader = reader
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> LedgerReader:
        """Open an existing ledger for reading only."""
        return cls(open_reader_thread(path), path)

    async def close(self) -> None:
        await self._reader.close()

    async def __aenter__(self) -> LedgerReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- orders, fills, positions ------------------------------------------------------------------

    async def get_order(self, client_order_id: str) -> Order | None:
        return await self._reader.read(lambda conn: load_order(conn, client_order_id))

    async def get_orders(self, client_order_ids: Iterable[str]) -> dict[str, Order]:
        """The orders under these ids that the ledger knows, in one read (absent: unknown)."""
        ids = list(client_order_ids)

        def read(conn: sqlite3.Connection) -> dict[str, Order]:
            found = {}
            for coid in ids:
                order = load_order(conn, coid)
                if order is not None:
                    found[coid] = order
            return found

        return await self._reader.read(read) if ids else {}

    async def get_order_by_broker_id(self, broker_order_id: str) -> Order | None:
        def read(conn: sqlite3.Connection) -> Order | None:
            cursor = conn.execute(
                "SELECT client_order_id FROM order_events WHERE broker_order_id = ? LIMIT 1",
                (broker_order_id,),
            )
            row = cursor.fetchone()
            return None if row is None else load_order(conn, str(row[0]))

        return await self._reader.read(read)

    async def orders_for_decision(self, decision_id: str) -> list[Order]:
        def read(conn: sqlite3.Connection) -> list[Order]:
            cursor = conn.execute(
                f"SELECT {ORDER_COLUMNS} {ORDER_FROM} WHERE o.decision_id = ? ORDER BY o.seq",
                (decision_id,),
            )
            return [order_from_row(row) for row in cursor.fetchall()]

        return await self._reader.read(read)

    async def open_orders(self) -> list[Order]:
        """Every order not yet in a terminal state (RESERVED and UNKNOWN included), oldest first."""
        return await self._reader.read(read_open_orders)

    async def positions(self) -> dict[tuple[str, str], Position]:
        """The position of every (strategy id, symbol) that ever traded, flat ones included."""
        return await self._reader.read(read_positions)

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

        return await self._reader.read(read)

    async def fill_snapshot(self, fills_seq: int, execution_ids: Iterable[str]) -> FillSnapshot:
        """Known execution ids, positions and the fills after ``fills_seq``, all from one moment."""
        wanted = list(execution_ids)
        return await self._reader.read(lambda conn: read_fill_snapshot(conn, fills_seq, wanted))

    async def fills_for_order(self, client_order_id: str) -> list[Fill]:
        def read(conn: sqlite3.Connection) -> list[Fill]:
            cursor = conn.execute(
                f"SELECT {history.FILL_COLUMNS} FROM fills WHERE client_order_id = ? ORDER BY seq",
                (client_order_id,),
            )
            return [fill_from_row(row) for row in cursor.fetchall()]

        return await self._reader.read(read)

    async def order_history(
        self, *, symbol: str | None = None, since_ns: int | None = None
    ) -> list[tuple[Order, list[tuple[Decimal, Decimal]]]]:
        """Every order (created at or after ``since_ns``) with its current state and fills' (qty, price)."""
        return await self._reader.read(lambda conn: history.read_orders(conn, symbol, since_ns))

    async def fill_history(
        self, *, symbol: str | None = None, since_ns: int | None = None
    ) -> list[StoredFill]:
        """Every fill (received at or after ``since_ns``), in ledger order."""
        return await self._reader.read(lambda conn: history.read_fills(conn, symbol, since_ns))

    async def last_fill_prices(self) -> dict[str, Decimal]:
        """The latest fill price per symbol."""
        return await self._reader.read(history.read_last_fill_prices)

    async def latest_account(self) -> tuple[BrokerAccount, int] | None:
        """The newest account snapshot (cash, equity, buying power) and when it was read (UTC ns)."""
        return await self._reader.read(history.read_latest_account)

    async def realized_marks(self, before_ns: int) -> list[RealizedMarks]:
        """Per (strategy, symbol): realized P&L and fees now and as of the last fill before ``before_ns``."""
        return await self._reader.read(lambda conn: history.read_realized_marks(conn, before_ns))

    async def last_fill_seq(self) -> int:
        """The seq of the newest fill row (0: none): a reconciliation cursor."""
        return await self._reader.read(
            lambda conn: history.read_count(conn, "SELECT coalesce(max(seq), 0) FROM fills")
        )

    async def fills_after(self, fills_seq: int, after_ns: int) -> list[Fill]:
        """Fills appended after ``fills_seq`` whose time (broker's, else local) is after ``after_ns``."""
        return await self._reader.read(lambda conn: history.read_fills_after(conn, fills_seq, after_ns))

    async def filled_order_count(self) -> int:
        """How many orders reached FILLED."""
        return await self._reader.read(
            lambda conn: history.read_count(
                conn, "SELECT count(*) FROM order_closures WHERE status = 'filled'"
            )
        )

    # -- the global event journal ------------------------------------------------------------------

    async def events_after(self, seq: int, limit: int = 1000) -> list[LedgerEvent]:
        """Up to ``limit`` ledger events with journal seq above ``seq``, in global order."""
        return await self._reader.read(lambda conn: history.read_events_after(conn, seq, limit))

    async def last_seq(self) -> int:
        """The newest journal seq (0 for an empty ledger)."""
        return await self._reader.read(history.read_last_seq)

    async def related_ids(self, identifier: str) -> tuple[set[str], set[str], set[str]]:
        """(decision ids, client order ids, broker order ids) connected to ``identifier``."""
        return await self._reader.read(lambda conn: history.read_related_ids(conn, identifier))

    async def story(
        self, decision_ids: Iterable[str], order_ids: Iterable[str], subjects: Iterable[str]
    ) -> list[LedgerEvent]:
        """Every event about these decisions and orders (incidents by subject), in global order."""
        dids, oids, subs = list(decision_ids), list(order_ids), list(subjects)
        return await self._reader.read(lambda conn: history.read_story(conn, dids, oids, subs))

    # -- the operator's HTTP surface and alerts (SQL in ``surface``) ---------------------------------

    async def decisions(
        self,
        *,
        strategy_id: str | None = None,
        symbol: str | None = None,
        action: str | None = None,
        reason: str | None = None,
        limit: int = 500,
    ) -> list[surface.DecisionRecord]:
        """The newest ``limit`` decisions matching the filters, oldest first."""
        return await self._reader.read(
            lambda conn: surface.read_decisions(
                conn, strategy_id=strategy_id, symbol=symbol, action=action, reason=reason, limit=limit
            )
        )

    async def latest_strategy_state(self, strategy_id: str) -> StrategyState | None:
        """What ``strategy_id`` saw at its newest recorded decision (bars, holdings, freshness)."""
        return await self._reader.read(lambda conn: seen.latest_state(conn, strategy_id))

    async def equity_curve(self, since_ns: int, points: int = 200) -> list[tuple[int, Decimal]]:
        return await self._reader.read(lambda conn: surface.read_equity_curve(conn, since_ns, points))

    async def pending_manual_orders(self) -> list[surface.ManualOrder]:
        """Operator order requests the daemon has not reserved yet, oldest first."""
        return await self._reader.read(surface.read_pending_manual_orders)

    async def alert_cursor(self) -> int | None:
        return await self._reader.read(surface.read_alert_cursor)

    async def alerts(self, limit: int = 100) -> list[tuple[surface.AlertRecord, list[tuple[str, str, int]]]]:
        return await self._reader.read(lambda conn: surface.read_alerts(conn, limit))

    # -- controls, incidents, reconciliation -------------------------------------------------------

    async def control_state(self) -> ControlState:
        return await self._reader.read(_fold_controls)

    async def last_control_seq(self) -> int:
        """A cheap change marker: the daemon re-reads controls when this moves."""
        return await self._reader.read(read_last_control_seq)

    async def incident_has_control(self, incident_id: str) -> bool:
        """Whether a control (pause or halt) was ever appended for this incident."""
        return bool(
            await self._reader.read(
                lambda conn: history.read_count(
                    conn, "SELECT count(*) FROM control_incidents WHERE incident_id = ?", (incident_id,)
                )
            )
        )

    async def get_incident(self, incident_id: str) -> Incident | None:
        return next((i for i in await self.incidents() if i.incident_id == incident_id), None)

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

        return await self._reader.read(read)

    async def open_restore(self) -> RestoreRecord | None:
        """The restore this ledger came from, until a clean reconciliation run has converged after it."""
        return await self._reader.read(read_open_restore)

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

        return await self._reader.read(read)

    async def reconciliations_since(self, started_after_ns: int) -> list[ReconciliationRun]:
        """Every reconciliation run that started after ``started_after_ns``, oldest first."""

        def read(conn: sqlite3.Connection) -> list[ReconciliationRun]:
            rows = conn.execute(
                "SELECT trigger, clean, summary_json, started_ns, finished_ns FROM reconciliations"
                " WHERE started_ns > ? ORDER BY seq",
                (started_after_ns,),
            ).fetchall()
            return [
                ReconciliationRun(
                    trigger=r[0],
                    clean=bool(r[1]),
                    summary=json.loads(r[2]),
                    started_ns=r[3],
                    finished_ns=r[4],
                )
                for r in rows
            ]

        return await self._reader.read(read)

    async def decision_count_since(self, after_ns: int) -> int:
        """How many decisions were recorded (local time) after ``after_ns``."""
        return await self._reader.read(
            lambda conn: history.read_count(
                conn, "SELECT count(*) FROM decisions WHERE local_ts_ns > ?", (after_ns,)
            )
        )

    async def reconciliation_cursor(self) -> ReconciliationCursor | None:
        """Where the last recorded reconciliation run left off (written in that run's transaction)."""

        def read(conn: sqlite3.Connection) -> ReconciliationCursor | None:
            row = conn.execute(
                "SELECT run_seq, fills_seq, cash, cash_at_ns FROM reconciliation_cursors"
                " ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            return ReconciliationCursor(
                run_seq=int(row[0]), fills_seq=int(row[1]), cash=Decimal(row[2]), cash_at_ns=int(row[3])
            )

        return await self._reader.read(read)

    async def pending_broker_requests(self) -> list[BrokerRequest]:
        """Replace and flatten requests the daemon has not carried out yet, oldest first."""
        return await self._reader.read(requests.read_pending)

    async def broker_request(self, seq: int) -> tuple[BrokerRequest, tuple[bool, str] | None] | None:
        """One replace or flatten request and its outcome (ok, detail), if it has one yet."""
        return await self._reader.read(lambda conn: requests.read_request(conn, seq))

    async def flatten_covers(self, created_ns: int, margin_ns: int) -> bool:
        """Whether a flatten was under way when a broker order was created at ``created_ns``."""
        return await self._reader.read(lambda conn: requests.flatten_covers(conn, created_ns, margin_ns))

    async def pending_cancel_requests(self) -> list[CancelRequest]:
        """Requests the daemon has not carried out yet, oldest first."""

        def read(conn: sqlite3.Connection) -> list[CancelRequest]:
            rows = conn.execute(
                "SELECT r.seq, r.target, r.reason, r.actor, r.local_ts_ns FROM cancel_requests r"
                " WHERE NOT EXISTS (SELECT 1 FROM cancel_outcomes o WHERE o.request_seq = r.seq)"
                " ORDER BY r.seq"
            ).fetchall()
            return [CancelRequest(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]

        return await self._reader.read(read)

    # -- the hot state (from disk here; from memory in ``Ledger``) -------------------------------

    async def equity_since(self, since_ns: int) -> tuple[Decimal, Decimal, Decimal] | None:
        """(first, peak, latest) account equity recorded at or after ``since_ns``, or None."""
        values = [e for _, e in await self._reader.read(lambda c: equity_rows(c, since_ns))]
        return (values[0], max(values), values[-1]) if values else None

    async def projection(self) -> Projection:
        """The hot state, freshly read from disk in one snapshot."""
        return await self._reader.read(Projection.load)

    async def book(self, day_start_ns: int) -> Book:
        """Positions, open orders and today's equity, in one read."""
        projection = await self.projection()
        return Book(
            positions=dict(projection.positions),
            open_orders=sorted(projection.open_orders.values(), key=_order_key),
            equity=await self.equity_since(day_start_ns),
        )

    async def unknown_orders(self) -> list[Order]:
        """Orders in UNKNOWN, oldest first; an order's ``updated_ns`` is when it became UNKNOWN."""
        return (await self.projection()).unknown_orders()

    async def reject_streak(self, since_seq: int = 0) -> int:
        """How many of the latest broker submission outcomes after journal seq ``since_seq`` were
        rejections, in a row (an accepted submission ends the streak)."""
        return (await self.projection()).reject_streak(since_seq)

    async def submissions_since(self, since_ns: int) -> list[int]:
        """The local times of orders' submission outcomes at or after ``since_ns``, oldest first."""
        return (await self.projection()).submissions_since(since_ns)

    async def control_journal_seq(self) -> int:
        """The journal seq of the latest control (the trading state's last change), 0 if none."""
        return (await self.projection()).control_journal_seq


def _order_key(order: Order) -> tuple[int, str]:
    return order.created_ns, order.client_order_id


def equity_rows(conn: sqlite3.Connection, since_ns: int) -> list[tuple[int, Decimal]]:
    """Account snapshots (seq, equity) taken at or after ``since_ns``, oldest first."""
    # INDEXED BY: left to itself SQLite walks the whole table in seq order (no sort) rather than the
    # day's index range, and the table gains a row per reconciliation run for as long as the ledger lives.
    cursor = conn.execute(
        "SELECT seq, equity FROM account_snapshots INDEXED BY account_snapshots_by_time"
        " WHERE local_ts_ns >= ? ORDER BY seq",
        (since_ns,),
    )
    return [(int(s), Decimal(e)) for s, e in cursor.fetchall()]


def open_reader_thread(path: Path, *, on_loop: bool = False) -> ReaderThread:
    try:
        return ReaderThread(connect_reader(path), path, on_loop=on_loop)
    except sqlite3.Error as error:
        raise translate(error, path) from error
