"""The SQL of the records that oversee trading: controls, incidents, cancel requests, reconciliation
runs and account snapshots. Plain functions over a ``sqlite3.Connection``, each run inside the
writer's transaction by ``Ledger``; the order path's SQL is in ``rows``."""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from autoquant.domain.broker import BrokerAccount
from autoquant.domain.controls import Control
from autoquant.errors import LedgerError
from autoquant.ledger.projection import ControlCommitted
from autoquant.ledger.records import ReconciliationCursor, ReconciliationRun
from autoquant.ledger.rows import journal_seq, load_order

#: (snapshot seq, equity, local ns) of a recorded account snapshot, for the projection.
EquityRow = tuple[int, Decimal, int]


@dataclass(frozen=True)
class IncidentDraft:
    kind: str
    subject: str
    scope: str
    message: str
    action: str
    details: dict[str, Any]
    local_ts_ns: int


def insert_control(conn: sqlite3.Connection, control: Control, incident_id: str | None) -> ControlCommitted:
    cursor = conn.execute(
        "INSERT INTO controls (kind, scope, reason, actor, local_ts_ns) VALUES (?, ?, ?, ?, ?)",
        (control.kind.value, control.scope, control.reason, control.actor, control.local_ts_ns),
    )
    seq = int(cursor.lastrowid or 0)
    if incident_id is not None:
        conn.execute(
            "INSERT INTO control_incidents (control_seq, incident_id) VALUES (?, ?)",
            (seq, incident_id),
        )
    return ControlCommitted(control, seq, journal_seq(conn, "control", seq))


def open_incident(conn: sqlite3.Connection, draft: IncidentDraft) -> tuple[str, bool]:
    """The open incident of this kind and subject if there is one, else a new one: (id, new)."""
    cursor = conn.execute(
        "SELECT i.incident_id FROM incidents i WHERE i.kind = ? AND i.subject = ? AND NOT EXISTS"
        " (SELECT 1 FROM incident_resolutions r WHERE r.incident_id = i.incident_id)",
        (draft.kind, draft.subject),
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
            draft.kind,
            draft.subject,
            draft.scope,
            draft.message,
            draft.action,
            json.dumps(draft.details, default=str, sort_keys=True),
            draft.local_ts_ns,
        ),
    )
    return incident_id, True


def resolve_incident(
    conn: sqlite3.Connection, incident_id: str, actor: str, note: str, local_ts_ns: int
) -> bool:
    cursor = conn.execute("SELECT 1 FROM incidents WHERE incident_id = ?", (incident_id,))
    if cursor.fetchone() is None:
        raise LedgerError(f"no incident {incident_id}: `autoquant incidents` lists them")
    cursor = conn.execute(
        "INSERT INTO incident_resolutions (incident_id, actor, note, local_ts_ns)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (incident_id) DO NOTHING",
        (incident_id, actor, note, local_ts_ns),
    )
    return cursor.rowcount == 1


def insert_account(conn: sqlite3.Connection, account: BrokerAccount, local_ts_ns: int) -> EquityRow:
    cursor = conn.execute(
        "INSERT INTO account_snapshots (cash, equity, buying_power, local_ts_ns) VALUES (?, ?, ?, ?)",
        (str(account.cash), str(account.equity), str(account.buying_power), local_ts_ns),
    )
    return int(cursor.lastrowid or 0), account.equity, local_ts_ns


def insert_reconciliation(
    conn: sqlite3.Connection,
    run: ReconciliationRun,
    account: BrokerAccount | None,
    account_ts_ns: int | None,
    cursor: ReconciliationCursor | None,
) -> EquityRow | None:
    """The run, the account snapshot it read and its cursor, together."""
    snapshot = None
    if account is not None:
        snapshot = insert_account(conn, account, run.finished_ns if account_ts_ns is None else account_ts_ns)
    inserted = conn.execute(
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
    if cursor is not None:
        conn.execute(
            "INSERT INTO reconciliation_cursors (run_seq, fills_seq, cash, cash_at_ns) VALUES (?, ?, ?, ?)",
            (int(inserted.lastrowid or 0), cursor.fills_seq, str(cursor.cash), cursor.cash_at_ns),
        )
    return snapshot


def insert_cancel_request(
    conn: sqlite3.Connection, target: str, reason: str, actor: str, local_ts_ns: int
) -> int:
    if target != "*" and load_order(conn, target) is None:
        raise LedgerError(f"no order {target}: `autoquant orders --open` lists the open ones")
    cursor = conn.execute(
        "INSERT INTO cancel_requests (target, reason, actor, local_ts_ns) VALUES (?, ?, ?, ?)",
        (target, reason, actor, local_ts_ns),
    )
    return int(cursor.lastrowid or 0)


def insert_cancel_outcome(
    conn: sqlite3.Connection, request_seq: int, canceled: int, detail: str, local_ts_ns: int
) -> None:
    conn.execute(
        "INSERT INTO cancel_outcomes (request_seq, canceled, detail, local_ts_ns) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (request_seq) DO NOTHING",
        (request_seq, canceled, detail, local_ts_ns),
    )
