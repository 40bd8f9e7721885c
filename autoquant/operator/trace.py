"""``autoquant trace ID``: why did it do this? Everything that bears one id, in ledger order.

An id is a decision id, a client order id or a broker order id. From it the trace finds the related
ids (a decision's orders, an order's decision and broker id) and gathers, from the ledger: the
decision with its reason and the market-data time it used, every risk check, the reservation, every
state transition with both timestamps, every fill and every incident about the order; and from the
log file every line that bears one of those ids, merged in by its timestamp. Ledger entries follow
the ledger's global sequence (the order things were committed), not their clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from autoquant.domain.values import to_ns
from autoquant.ledger import LedgerEvent, LedgerReader
from autoquant.operator.inspection import iso
from autoquant.operator.logview import Tally, bears_id, read_lines
from autoquant.operator.text import amount, order_size, safe

Entry = dict[str, Any]

#: At the same sort time, ledger entries come before log lines.
_LEDGER, _LOG = range(2)


@dataclass
class Related:
    """The ids that belong to one story."""

    decisions: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)
    brokers: set[str] = field(default_factory=set)

    def all(self) -> set[str]:
        return self.decisions | self.orders | self.brokers


async def related_ids(ledger: LedgerReader, identifier: str) -> Related:
    """The decision, client order and broker order ids connected to ``identifier`` (empty: unknown)."""
    decisions, orders, brokers = await ledger.related_ids(identifier)
    return Related(decisions, orders, brokers)


def _entry(event: LedgerEvent) -> Entry | None:
    """A ledger event as a trace entry, or None for kinds a story omits."""
    f, ts = event.fields, event.local_ts_ns
    if event.kind == "decision":
        entry = {"what": "decision", "time": iso(ts), "decision_id": f["decision_id"]}
        entry |= {"strategy_id": f["strategy_id"], "symbol": f["symbol"], "action": f["action"]}
        entry |= {"reason": f["reason"], "data_time": iso(f["data_time_ns"]), "inputs": f["inputs"]}
        return entry
    if event.kind == "risk_event":
        entry = {"what": "risk_check", "time": iso(ts), "decision_id": f["decision_id"]}
        entry |= {"client_order_id": f["client_order_id"], "stage": f["stage"], "allowed": bool(f["allowed"])}
        return entry | {"reason": f["reason"], "checks": f["checks"]}
    if event.kind == "order_reserved":
        entry = {"what": "reserved", "time": iso(ts), "client_order_id": f["client_order_id"]}
        entry |= {"decision_id": f["decision_id"], "strategy_id": f["strategy_id"], "symbol": f["symbol"]}
        entry |= {"side": f["side"], "qty": f["qty"], "order_type": f["order_type"]}
        entry |= {"time_in_force": f["time_in_force"], "limit_price": f["limit_price"]}
        entry |= {"stop_price": f.get("stop_price"), "notional": f.get("notional")}
        entry |= {"trail_price": f.get("trail_price"), "trail_percent": f.get("trail_percent")}
        return entry | {"extended_hours": bool(f.get("extended_hours"))}
    if event.kind == "order_event":
        entry = {"what": "transition", "time": iso(ts), "broker_time": iso(f["broker_ts_ns"])}
        entry |= {"client_order_id": f["client_order_id"], "broker_order_id": f["broker_order_id"]}
        entry |= {"event": f["kind"], "status": f["status_after"], "filled_qty": f["filled_qty_after"]}
        return entry | {"reason": f["reason"]}
    if event.kind == "fill":
        entry = {"what": "fill", "time": iso(ts), "broker_time": iso(f["broker_ts_ns"])}
        entry |= {"client_order_id": f["client_order_id"], "broker_order_id": f["broker_order_id"]}
        entry |= {"execution_id": f["execution_id"], "side": f["side"], "qty": f["qty"], "price": f["price"]}
        return entry | {"fee": f["fee"], "position_qty_after": f["position_qty"]}
    if event.kind == "incident":
        entry = {"what": "incident", "time": iso(ts), "incident_id": f["incident_id"], "kind": f["kind"]}
        return entry | {"subject": f["subject"], "message": f["message"], "action": f["action"]}
    return None


async def ledger_entries(ledger: LedgerReader, ids: Related) -> list[tuple[int, int, int, Entry]]:
    """(sort time ns, pipeline rank, journal seq, entry) for every ledger event of the story.

    The events come in the ledger's global order; each one's sort time is the latest event time seen so
    far in that order, so sorting keeps the ledger's order exactly while log lines merge in by time.
    """
    entries: list[tuple[int, int, int, Entry]] = []
    clock = 0
    for event in await ledger.story(ids.decisions, ids.orders, ids.all()):
        made = _entry(event)
        if made is None:
            continue
        clock = max(clock, event.local_ts_ns)
        entries.append((clock, _LEDGER, event.seq, made))
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


async def trace(ledger: LedgerReader, identifier: str, log_path: Path | None = None) -> list[Entry] | None:
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
        inputs = entry.get("inputs")
        if isinstance(inputs, dict) and inputs:
            # Exact in the ledger (and --json); six places at most for a person (an SMA has forty).
            text += " [" + ", ".join(f"{k} {amount(v)}" for k, v in inputs.items()) + "]"
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
        prices = "".join(
            f" {name.replace('_price', '').replace('_', ' ')} {entry[name]}"
            for name in ("limit_price", "stop_price", "trail_price")
            if entry.get(name)
        )
        if entry.get("trail_percent"):
            prices += f" trail {entry['trail_percent']}%"
        size = order_size(entry["qty"], entry.get("notional"))
        text = f"{entry['side']} {size} {entry['symbol']} {entry['order_type']}{prices} "
        text += _facts(entry, "client_order_id", "time_in_force")
        if entry.get("extended_hours"):
            text += " extended_hours"
    elif what == "transition":
        text = f"{entry['event']}: order {entry['status'].upper()}, filled {amount(entry['filled_qty'])} "
        text += _facts(entry, "broker_order_id", "broker_time", "reason")
    elif what == "fill":
        text = f"{entry['side']} {entry['qty']} @ {entry['price']} fee={entry['fee']} "
        text += _facts(entry, "execution_id", "broker_time", "position_qty_after")
    elif what == "incident":
        text = f"{entry['kind']}: {entry['message']}; what to do: {entry['action']} " + _facts(
            entry, "incident_id"
        )
    else:
        fields = " ".join(f"{k}={v}" for k, v in entry.get("fields", {}).items() if k != "logger")
        text = f"[{entry.get('level')}] {entry.get('worker')} {entry.get('event')} {fields}"
    return safe(f"{entry['time']}  {what:<10}  {text.strip()}")  # reasons are operator-typed text
