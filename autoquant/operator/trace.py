"""``autoquant trace ID``: why did it do this? Everything that bears one id, in time order.

An id is a decision id, a client order id or a broker order id. From it the trace finds the related
ids (a decision's orders, an order's decision and broker id) and gathers, from the ledger: the
decision with its reason and the market-data time it used, every risk check, the reservation, every
state transition with both timestamps, every fill and every incident about the order; and from the
log file every line that bears one of those ids, merged in by its timestamp. Entries at the same
instant keep the pipeline's order (decision, risk, reservation, transition, fill, incident, log).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from autoquant.domain.values import to_ns
from autoquant.ledger import Ledger
from autoquant.operator.inspection import iso
from autoquant.operator.logview import Tally, bears_id, read_lines

Entry = dict[str, Any]

_DECISION, _RISK, _RESERVED, _TRANSITION, _FILL, _INCIDENT, _LOG = range(7)


def _marks(items: list[str]) -> str:
    return ",".join("?" * len(items)) or "NULL"


@dataclass
class Related:
    """The ids that belong to one story."""

    decisions: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)
    brokers: set[str] = field(default_factory=set)

    def all(self) -> set[str]:
        return self.decisions | self.orders | self.brokers


async def related_ids(ledger: Ledger, identifier: str) -> Related:
    """The decision, client order and broker order ids connected to ``identifier`` (empty: unknown)."""
    found = Related()
    if await ledger.query("SELECT 1 FROM decisions WHERE decision_id = ?", [identifier]):
        found.decisions.add(identifier)
    for (coid,) in await ledger.query(
        "SELECT client_order_id FROM orders WHERE client_order_id = ? OR decision_id = ?"
        " UNION SELECT client_order_id FROM order_events WHERE broker_order_id = ?"
        " UNION SELECT client_order_id FROM fills WHERE broker_order_id = ?",
        [identifier] * 4,
    ):
        found.orders.add(str(coid))
    orders = sorted(found.orders)
    for (decision_id,) in await ledger.query(
        f"SELECT decision_id FROM orders WHERE client_order_id IN ({_marks(orders)})", orders
    ):
        if decision_id:
            found.decisions.add(str(decision_id))
    for (broker_id,) in await ledger.query(
        f"SELECT broker_order_id FROM order_events WHERE client_order_id IN ({_marks(orders)})"
        f" UNION SELECT broker_order_id FROM fills WHERE client_order_id IN ({_marks(orders)})",
        [*orders, *orders],
    ):
        if broker_id:
            found.brokers.add(str(broker_id))
    return found


async def ledger_entries(ledger: Ledger, ids: Related) -> list[tuple[int, int, int, Entry]]:
    """(time ns, pipeline rank, seq, entry) for every ledger row of the story."""
    dids, oids = sorted(ids.decisions), sorted(ids.orders)
    entries: list[tuple[int, int, int, Entry]] = []
    for seq, ts, did, strategy, symbol, action, reason, data_ns, inputs in await ledger.query(
        "SELECT seq, local_ts_ns, decision_id, strategy_id, symbol, action, reason, data_time_ns, inputs_json"
        f" FROM decisions WHERE decision_id IN ({_marks(dids)})",
        dids,
    ):
        entry = {"what": "decision", "time": iso(ts), "decision_id": did, "strategy_id": strategy}
        entry |= {"symbol": symbol, "action": action, "reason": reason, "data_time": iso(data_ns)}
        entries.append((ts, _DECISION, seq, entry | {"inputs": json.loads(inputs)}))
    for seq, ts, did, coid, stage, allowed, reason, checks in await ledger.query(
        "SELECT seq, local_ts_ns, decision_id, client_order_id, stage, allowed, reason, checks_json"
        f" FROM risk_events WHERE decision_id IN ({_marks(dids)}) OR client_order_id IN ({_marks(oids)})",
        [*dids, *oids],
    ):
        entry = {"what": "risk_check", "time": iso(ts), "decision_id": did, "client_order_id": coid}
        entry |= {"stage": stage, "allowed": bool(allowed), "reason": reason, "checks": json.loads(checks)}
        entries.append((ts, _RISK, seq, entry))
    for seq, ts, coid, did, strategy, symbol, side, qty, kind, tif, limit in await ledger.query(
        "SELECT seq, local_ts_ns, client_order_id, decision_id, strategy_id, symbol, side, qty, order_type,"
        f" time_in_force, limit_price FROM orders WHERE client_order_id IN ({_marks(oids)})",
        oids,
    ):
        entry = {"what": "reserved", "time": iso(ts), "client_order_id": coid, "decision_id": did}
        entry |= {"strategy_id": strategy, "symbol": symbol, "side": side, "qty": qty, "order_type": kind}
        entries.append((ts, _RESERVED, seq, entry | {"time_in_force": tif, "limit_price": limit}))
    for seq, ts, coid, kind, status, filled, broker_id, reason, broker_ns in await ledger.query(
        "SELECT seq, local_ts_ns, client_order_id, kind, status_after, filled_qty_after, broker_order_id,"
        f" reason, broker_ts_ns FROM order_events WHERE client_order_id IN ({_marks(oids)})",
        oids,
    ):
        entry = {
            "what": "transition",
            "time": iso(ts),
            "broker_time": iso(broker_ns),
            "client_order_id": coid,
        }
        entry |= {"broker_order_id": broker_id, "event": kind, "status": status, "filled_qty": filled}
        entries.append((ts, _TRANSITION, seq, entry | {"reason": reason}))
    for seq, ts, coid, eid, broker_id, side, qty, price, fee, broker_ns, pos_qty in await ledger.query(
        "SELECT seq, local_ts_ns, client_order_id, execution_id, broker_order_id, side, qty, price, fee,"
        f" broker_ts_ns, position_qty FROM fills WHERE client_order_id IN ({_marks(oids)})",
        oids,
    ):
        entry = {"what": "fill", "time": iso(ts), "broker_time": iso(broker_ns), "client_order_id": coid}
        entry |= {"broker_order_id": broker_id, "execution_id": eid, "side": side, "qty": qty}
        entries.append((ts, _FILL, seq, entry | {"price": price, "fee": fee, "position_qty_after": pos_qty}))
    subjects = sorted(ids.all())
    for seq, ts, incident_id, kind, subject, message, action in await ledger.query(
        "SELECT seq, local_ts_ns, incident_id, kind, subject, message, action FROM incidents"
        f" WHERE subject IN ({_marks(subjects)})",
        subjects,
    ):
        entry = {"what": "incident", "time": iso(ts), "incident_id": incident_id, "kind": kind}
        entries.append(
            (ts, _INCIDENT, seq, entry | {"subject": subject, "message": message, "action": action})
        )
    return entries


def _log_time_ns(record: dict[str, Any]) -> int | None:
    value = record.get("timestamp")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return to_ns(moment) if moment.tzinfo is not None else None


def log_entries(log_path: Path, ids: Related) -> list[tuple[int, int, int, Entry]]:
    """The log lines (rotated files included) that bear any of the ids, as trace entries."""
    wanted = sorted(ids.all())
    entries: list[tuple[int, int, int, Entry]] = []
    for number, line in enumerate(read_lines(log_path, Tally())):
        record = line.record
        if not any(bears_id(record, needle) for needle in wanted):
            continue
        ts = _log_time_ns(record)
        if ts is None:
            continue  # a line without a usable time cannot be placed in the story
        fields = {k: v for k, v in record.items() if k not in ("timestamp", "level", "event", "worker")}
        entry = {"what": "log", "time": iso(ts), "level": record.get("level"), "event": record.get("event")}
        entries.append((ts, _LOG, number, entry | {"worker": record.get("worker"), "fields": fields}))
    return entries


async def trace(ledger: Ledger, identifier: str, log_path: Path | None = None) -> list[Entry] | None:
    """The story of ``identifier`` in time order, or None when nothing in the ledger bears it."""
    ids = await related_ids(ledger, identifier)
    if not ids.decisions and not ids.orders:
        return None
    entries = await ledger_entries(ledger, ids)
    if log_path is not None:
        entries += log_entries(log_path, ids)
    entries.sort(key=lambda item: item[:3])
    return [entry for *_, entry in entries]


def _facts(entry: Entry, *keys: str) -> str:
    return " ".join(f"{key}={entry[key]}" for key in keys if entry.get(key) not in (None, ""))


def describe(entry: Entry) -> str:
    """One readable line: time, what, key facts."""
    what = entry["what"]
    if what == "decision":
        text = f"{entry['strategy_id']} {entry['action']} {entry['symbol']}: {entry['reason']}"
        text += f" (bar {entry['data_time']}) " + _facts(entry, "decision_id")
    elif what == "risk_check":
        verdict = "allowed" if entry["allowed"] else f"DENIED: {entry['reason']}"
        failed = [
            f"{c.get('name')}: {c.get('detail')}"
            for c in entry["checks"]
            if isinstance(c, dict) and c.get("passed") is False
        ]
        text = f"{entry['stage']} check {verdict}, {len(entry['checks'])} checks" + (
            f" (failed: {'; '.join(failed)})" if failed else ""
        )
    elif what == "reserved":
        limit = f" limit {entry['limit_price']}" if entry.get("limit_price") else ""
        text = f"{entry['side']} {entry['qty']} {entry['symbol']} {entry['order_type']}{limit} "
        text += _facts(entry, "client_order_id", "time_in_force")
    elif what == "transition":
        text = f"{entry['event']} -> {entry['status']} filled={entry['filled_qty']} "
        text += _facts(entry, "broker_order_id", "broker_time", "reason")
    elif what == "fill":
        text = f"{entry['side']} {entry['qty']} @ {entry['price']} fee={entry['fee']} "
        text += _facts(entry, "execution_id", "broker_time", "position_qty_after")
    elif what == "incident":
        text = f"{entry['kind']}: {entry['message']} -> {entry['action']} " + _facts(entry, "incident_id")
    else:
        fields = " ".join(f"{k}={v}" for k, v in entry.get("fields", {}).items() if k != "logger")
        text = f"[{entry.get('level')}] {entry.get('worker')} {entry.get('event')} {fields}"
    return f"{entry['time']}  {what:<10}  {text.strip()}"
