"""What the inspection commands show: rows built from the ledger, JSON-ready (Decimals as strings)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from autoquant.domain.values import from_ns
from autoquant.ledger import Ledger
from autoquant.ledger.ledger import _ORDER_COLUMNS, _ORDER_FROM, order_from_row

Row = dict[str, Any]


def iso(ns: int | None) -> str | None:
    return None if ns is None else from_ns(ns).isoformat().replace("+00:00", "Z")


async def status(ledger: Ledger) -> Row:
    controls = await ledger.control_state()
    last = await ledger.last_reconciliation()
    incidents = await ledger.incidents(open_only=True)
    return {
        "trading_state": controls.trading_state.value,
        "trading_state_reason": controls.state_reason or None,
        "trading_state_actor": controls.state_actor or None,
        "trading_state_since": iso(controls.state_since_ns) if controls.state_since_ns else None,
        "paused": [
            {"scope": f.scope, "reason": f.reason, "actor": f.actor, "since": iso(f.since_ns)}
            for f in controls.paused.values()
        ],
        "last_reconciliation": None
        if last is None
        else {
            "trigger": last.trigger,
            "clean": last.clean,
            "finished": iso(last.finished_ns),
            "summary": last.summary,
        },
        "open_incidents": len(incidents),
        "open_orders": len(await ledger.open_orders()),
        "positions": await positions(ledger),
    }


async def orders(
    ledger: Ledger, *, open_only: bool = False, symbol: str | None = None, since_ns: int | None = None
) -> list[Row]:
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if symbol:
        where.append("o.symbol = ?")
        params.append(symbol)
    if since_ns is not None:
        where.append("o.local_ts_ns >= ?")
        params.append(since_ns)
    rows = await ledger.query(
        f"SELECT {_ORDER_COLUMNS}, (SELECT group_concat(qty || '@' || price, ' ') FROM fills f"
        f" WHERE f.client_order_id = o.client_order_id) {_ORDER_FROM} WHERE {' AND '.join(where)}"
        " ORDER BY o.seq",
        params,
    )
    result = []
    for row in rows:
        order = order_from_row(row)
        if open_only and order.status.is_terminal:
            continue
        result.append(
            {
                "client_order_id": order.client_order_id,
                "broker_order_id": order.broker_order_id,
                "decision_id": order.decision_id,
                "strategy_id": order.strategy_id,
                "symbol": order.symbol,
                "side": order.side.value,
                "qty": str(order.qty),
                "filled_qty": str(order.filled_qty),
                "avg_fill_price": _average(row[-1]),
                "status": order.status.value,
                "reason": order.reason,
                "created": iso(order.created_ns),
                "updated": iso(order.updated_ns),
            }
        )
    return result


def _average(pairs: str | None) -> str | None:
    if not pairs:
        return None
    qty = notional = Decimal(0)
    for pair in pairs.split(" "):
        q, p = pair.split("@")
        qty += Decimal(q)
        notional += Decimal(q) * Decimal(p)
    return str((notional / qty).quantize(Decimal("0.0001"))) if qty else None


async def fills(ledger: Ledger, *, symbol: str | None = None, since_ns: int | None = None) -> list[Row]:
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if symbol:
        where.append("symbol = ?")
        params.append(symbol)
    if since_ns is not None:
        where.append("local_ts_ns >= ?")
        params.append(since_ns)
    rows = await ledger.query(
        "SELECT execution_id, client_order_id, broker_order_id, strategy_id, symbol, side, qty, price, fee,"
        f" broker_ts_ns, local_ts_ns FROM fills WHERE {' AND '.join(where)} ORDER BY seq",
        params,
    )
    keys = (
        "execution_id",
        "client_order_id",
        "broker_order_id",
        "strategy_id",
        "symbol",
        "side",
        "qty",
        "price",
        "fee",
    )
    return [
        {**dict(zip(keys, row[:9], strict=True)), "broker_time": iso(row[9]), "local_time": iso(row[10])}
        for row in rows
    ]


async def positions(ledger: Ledger, prices: dict[str, Decimal] | None = None) -> list[Row]:
    result = []
    for (strategy_id, symbol), position in sorted((await ledger.positions()).items()):
        price = (prices or {}).get(symbol)
        result.append(
            {
                "strategy_id": strategy_id,
                "symbol": symbol,
                "qty": str(position.qty),
                "avg_price": str(position.avg_price),
                "realized_pnl": str(position.realized_pnl),
                "unrealized_pnl": None if price is None else str(position.unrealized_pnl(price)),
                "fees": str(position.fees),
            }
        )
    return result


async def incidents(ledger: Ledger, *, open_only: bool = False) -> list[Row]:
    return [
        {
            "incident_id": i.incident_id,
            "kind": i.kind,
            "subject": i.subject,
            "scope": i.scope,
            "message": i.message,
            "action": i.action,
            "state": "resolved" if i.resolved else "open",
            "opened": iso(i.local_ts_ns),
            "resolved_by": i.resolved_by,
            "details": i.details,
        }
        for i in await ledger.incidents(open_only=open_only)
    ]


async def trace(ledger: Ledger, identifier: str) -> list[Row]:
    """Everything the ledger knows about a decision, client order id or broker order id, in time order."""
    decision_ids: set[str] = set()
    order_ids: set[str] = set()
    if await ledger.query("SELECT 1 FROM decisions WHERE decision_id = ?", [identifier]):
        decision_ids.add(identifier)
    for (coid,) in await ledger.query(
        "SELECT client_order_id FROM orders WHERE client_order_id = ? OR decision_id = ?"
        " UNION SELECT client_order_id FROM order_events WHERE broker_order_id = ?",
        [identifier, identifier, identifier],
    ):
        order_ids.add(str(coid))
    for (decision_id,) in await ledger.query(
        f"SELECT decision_id FROM orders WHERE client_order_id IN ({_marks(order_ids)})", sorted(order_ids)
    ):
        if decision_id:
            decision_ids.add(str(decision_id))
    entries: list[tuple[int, int, Row]] = []
    dids, oids = sorted(decision_ids), sorted(order_ids)
    for row in await ledger.query(
        "SELECT seq, local_ts_ns, decision_id, strategy_id, symbol, action, reason, data_time_ns, inputs_json"
        f" FROM decisions WHERE decision_id IN ({_marks(dids)})",
        dids,
    ):
        entries.append(
            (
                row[1],
                0,
                {
                    "what": "decision",
                    "time": iso(row[1]),
                    "decision_id": row[2],
                    "strategy_id": row[3],
                    "symbol": row[4],
                    "action": row[5],
                    "reason": row[6],
                    "data_time": iso(row[7]),
                    "inputs": json.loads(row[8]),
                },
            )
        )
    for row in await ledger.query(
        "SELECT seq, local_ts_ns, stage, allowed, reason, checks_json, client_order_id FROM risk_events"
        f" WHERE decision_id IN ({_marks(dids)}) OR client_order_id IN ({_marks(oids)})",
        [*dids, *oids],
    ):
        entries.append(
            (
                row[1],
                1,
                {
                    "what": "risk_check",
                    "time": iso(row[1]),
                    "stage": row[2],
                    "allowed": bool(row[3]),
                    "reason": row[4],
                    "checks": json.loads(row[5]),
                    "client_order_id": row[6],
                },
            )
        )
    for row in await ledger.query(
        "SELECT seq, local_ts_ns, client_order_id, side, qty, symbol, order_type, limit_price FROM orders"
        f" WHERE client_order_id IN ({_marks(oids)})",
        oids,
    ):
        entries.append(
            (
                row[1],
                2,
                {
                    "what": "reserved",
                    "time": iso(row[1]),
                    "client_order_id": row[2],
                    "side": row[3],
                    "qty": row[4],
                    "symbol": row[5],
                    "order_type": row[6],
                    "limit_price": row[7],
                },
            )
        )
    for row in await ledger.query(
        "SELECT seq, local_ts_ns, client_order_id, kind, status_after, filled_qty_after, broker_order_id,"
        f" reason, broker_ts_ns FROM order_events WHERE client_order_id IN ({_marks(oids)})",
        oids,
    ):
        entries.append(
            (
                row[1],
                3,
                {
                    "what": "transition",
                    "time": iso(row[1]),
                    "client_order_id": row[2],
                    "event": row[3],
                    "status": row[4],
                    "filled_qty": row[5],
                    "broker_order_id": row[6],
                    "reason": row[7],
                    "broker_time": iso(row[8]),
                },
            )
        )
    for row in await ledger.query(
        "SELECT seq, local_ts_ns, client_order_id, execution_id, side, qty, price, fee, broker_ts_ns"
        f" FROM fills WHERE client_order_id IN ({_marks(oids)})",
        oids,
    ):
        entries.append(
            (
                row[1],
                4,
                {
                    "what": "fill",
                    "time": iso(row[1]),
                    "client_order_id": row[2],
                    "execution_id": row[3],
                    "side": row[4],
                    "qty": row[5],
                    "price": row[6],
                    "fee": row[7],
                    "broker_time": iso(row[8]),
                },
            )
        )
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return [entry[2] for entry in entries]


def _marks(items: set[str] | list[str]) -> str:
    return ",".join("?" * len(items)) or "NULL"
