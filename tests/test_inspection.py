"""The inspection rows and the trace, pinned on a ledger with known content built through the Ledger API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from autoquant.domain.controls import Control, ControlKind
from autoquant.domain.decisions import Action, Decision, OrderIntent
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order, OrderEvent, OrderEventKind, OrderStatus
from autoquant.domain.values import Side, to_ns
from autoquant.errors import LedgerCorrupt, LedgerError, LedgerTooNew
from autoquant.ledger import Ledger, LedgerReader
from autoquant.ledger.records import ReconciliationRun, RiskEvent
from autoquant.operator import inspection, render
from autoquant.operator.trace import describe, trace

#: Yesterday evening: the first order (bought 4, partially filled, then canceled) and a sale of 1.
T0 = datetime(2026, 1, 5, 23, 0, tzinfo=UTC)
#: This morning: a sale of 2 (realized P&L today).
T1 = datetime(2026, 1, 6, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
MS = 1_000_000


def ns(moment: datetime, ms: int = 0) -> int:
    return to_ns(moment) + ms * MS


def iso(moment: datetime, ms: float = 0) -> str:
    return (moment + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decision(
    did: str, action: Action, qty: str, strategy: str = "sma-aapl", symbol: str = "AAPL"
) -> Decision:
    data_time = T0 - timedelta(minutes=1)
    intent = OrderIntent(
        strategy_id=strategy,
        symbol=symbol,
        side=Side(action.value),
        qty=Decimal(qty),
        reason=f"{action.value} signal",
        decision_id=did,
        data_time=data_time,
    )
    return Decision(
        decision_id=did,
        strategy_id=strategy,
        symbol=symbol,
        action=action,
        reason=f"{action.value} signal",
        data_time=data_time,
        inputs={"fast": "101", "slow": "100"},
        intent=intent,
    )


def risk(did: str, coid: str, stage: str, at_ns: int, symbol: str = "AAPL") -> RiskEvent:
    return RiskEvent(
        decision_id=did,
        client_order_id=coid,
        strategy_id="sma-aapl" if symbol == "AAPL" else "sma-msft",
        symbol=symbol,
        stage=stage,
        allowed=True,
        reason=None,
        checks=[{"name": "max_order_notional", "passed": True, "detail": "1000 <= 10000"}],
        local_ts_ns=at_ns,
    )


async def place(
    ledger: Ledger, did: str, coid: str, action: Action, qty: str, at_ns: int, symbol: str = "AAPL"
) -> None:
    """Decision, decision-stage risk check and reservation in one transaction, then the submit check."""
    strategy = "sma-aapl" if symbol == "AAPL" else "sma-msft"
    order = Order(
        client_order_id=coid,
        decision_id=did,
        strategy_id=strategy,
        symbol=symbol,
        side=Side(action.value),
        qty=Decimal(qty),
        created_ns=at_ns,
    )
    await ledger.record_decision_outcome(
        decision(did, action, qty, strategy, symbol), at_ns, risk(did, coid, "decision", at_ns, symbol), order
    )
    await ledger.append_risk_event(risk(did, coid, "submit", at_ns + 1 * MS, symbol))


def update(coid: str, kind: OrderEventKind, at_ns: int, broker: str, filled: str | None = None) -> OrderEvent:
    return OrderEvent(
        client_order_id=coid,
        kind=kind,
        broker_order_id=broker,
        filled_qty=None if filled is None else Decimal(filled),
        broker_ts_ns=at_ns - MS // 2,
        local_ts_ns=at_ns,
    )


def execution(
    eid: str, coid: str, broker: str, side: Side, qty: str, price: str, at_ns: int, symbol: str = "AAPL"
) -> Fill:
    return Fill(
        execution_id=eid,
        client_order_id=coid,
        broker_order_id=broker,
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        fee=Decimal("0.01") * Decimal(qty),
        broker_ts_ns=at_ns - MS // 2,
        local_ts_ns=at_ns,
    )


async def build(path: Path) -> dict[str, str]:
    """The known ledger. aq-1: buy 10 AAPL, accepted, partially filled 4 @ 100.5, canceled (yesterday);
    aq-3: sell 1 @ 101.5 (yesterday, realized 1); aq-2: sell 2 @ 102 (today, realized 3); aq-4: buy 5
    MSFT accepted and open. sma-msft paused; one open and one resolved incident; one clean
    reconciliation. Returns the incident ids."""
    async with await Ledger.open(path) as ledger:
        await place(ledger, "d-1", "aq-1", Action.BUY, "10", ns(T0))
        await ledger.apply_event(update("aq-1", OrderEventKind.ACCEPTED, ns(T0, 2), "b-1"))
        await ledger.apply_update(
            update("aq-1", OrderEventKind.PARTIAL_FILL, ns(T0, 3), "b-1", "4"),
            execution("x-1", "aq-1", "b-1", Side.BUY, "4", "100.5", ns(T0, 3)),
        )
        await ledger.apply_event(update("aq-1", OrderEventKind.CANCELED, ns(T0, 5), "b-1"))

        await place(ledger, "d-3", "aq-3", Action.SELL, "1", ns(T0, 10_000))
        await ledger.apply_update(
            update("aq-3", OrderEventKind.FILL, ns(T0, 10_003), "b-3", "1"),
            execution("x-3", "aq-3", "b-3", Side.SELL, "1", "101.5", ns(T0, 10_003)),
        )
        await place(ledger, "d-2", "aq-2", Action.SELL, "2", ns(T1))
        await ledger.apply_update(
            update("aq-2", OrderEventKind.FILL, ns(T1, 3), "b-2", "2"),
            execution("x-2", "aq-2", "b-2", Side.SELL, "2", "102", ns(T1, 3)),
        )
        await place(ledger, "d-4", "aq-4", Action.BUY, "5", ns(T1, 50), symbol="MSFT")
        await ledger.apply_event(update("aq-4", OrderEventKind.ACCEPTED, ns(T1, 52), "b-4"))

        await ledger.append_control(
            Control(
                kind=ControlKind.PAUSE, scope="sma-msft", reason="earnings", actor="ops", local_ts_ns=ns(T1)
            )
        )
        open_id, _ = await ledger.open_incident(
            kind="unknown_order",
            subject="b-9",
            scope="sma-aapl",
            message="the broker has an order the ledger never reserved",
            action="cancel it at the broker, then `autoquant resolve`",
            details={"broker_order_id": "b-9"},
            local_ts_ns=ns(T1, 100),
        )
        closed_id, _ = await ledger.open_incident(
            kind="illegal_transition",
            subject="aq-1",
            scope="sma-aapl",
            message="fill after cancel",
            action="check the fills",
            details={},
            local_ts_ns=ns(T0, 6),
        )
        await ledger.resolve_incident(closed_id, "ops", "checked", ns(T1, 200))
        await ledger.record_reconciliation(
            ReconciliationRun(
                trigger="startup",
                clean=True,
                summary={"repairs": 0},
                started_ns=ns(T1),
                finished_ns=ns(T1, 20),
            )
        )
    return {"open": open_id, "resolved": closed_id}


def log_line(at: datetime, ms: float, event: str, worker: str = "execution", **ids: Any) -> str:
    """One line in the shape autoquant.logs writes."""
    stamp = (at + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    record = {"timestamp": stamp, "level": "info", "event": event, "worker": worker, **ids}
    return json.dumps({**record, "logger": f"autoquant.{worker}"})


def write_log(path: Path) -> None:
    """Lines bearing aq-1 (by client order id and by broker order id), one for aq-2, one malformed."""
    path.write_text(
        "\n".join(
            [
                log_line(T0, 1.5, "order_submitted", decision_id="d-1", client_order_id="aq-1"),
                log_line(T0, 4, "cancel_requested", broker_order_id="b-1"),
                log_line(T1, 1, "order_submitted", decision_id="d-2", client_order_id="aq-2"),
                "{not json",
            ]
        )
        + "\n"
    )


@pytest.fixture
async def known(tmp_ledger_path: Path) -> AsyncIterator[tuple[LedgerReader, dict[str, str]]]:
    incident_ids = await build(tmp_ledger_path)
    ledger = await inspection.open_readonly(tmp_ledger_path)
    yield ledger, incident_ids
    await ledger.close()


async def test_orders_rows_pin_their_shape(known: tuple[LedgerReader, dict[str, str]]) -> None:
    """orders: one row per order with current state, filled qty and average fill price; --open filters."""
    ledger, _ = known
    rows = await inspection.orders(ledger)
    assert [r["client_order_id"] for r in rows] == ["aq-1", "aq-3", "aq-2", "aq-4"]
    assert rows[0] == {
        "client_order_id": "aq-1",
        "broker_order_id": "b-1",
        "decision_id": "d-1",
        "strategy_id": "sma-aapl",
        "symbol": "AAPL",
        "side": "buy",
        "order_type": "market",
        "limit_price": None,
        "stop_price": None,
        "notional": None,
        "qty": "10",
        "filled_qty": "4",
        "avg_fill_price": "100.5",
        "status": "canceled",
        "reason": None,
        "created": iso(T0),
        "updated": iso(T0, 5),
    }
    assert [r["client_order_id"] for r in await inspection.orders(ledger, open_only=True)] == ["aq-4"]
    assert [r["client_order_id"] for r in await inspection.orders(ledger, symbol="MSFT")] == ["aq-4"]
    since = await inspection.orders(ledger, since_ns=ns(T1))
    assert [r["client_order_id"] for r in since] == ["aq-2", "aq-4"]


async def test_open_orders_from_the_open_set_are_the_historys_open_rows(
    known: tuple[LedgerReader, dict[str, str]],
) -> None:
    """orders --open (read from the ledger's open orders, not the whole history) gives exactly the
    history's non-terminal rows, fills' average included, under each filter."""
    ledger, _ = known
    filters: list[dict[str, Any]] = [{}, {"symbol": "MSFT"}, {"symbol": "AAPL"}, {"since_ns": ns(T1)}]
    for given in filters:
        every = await inspection.orders(ledger, **given)
        expected = [r for r in every if not OrderStatus(r["status"]).is_terminal]
        assert await inspection.orders(ledger, open_only=True, **given) == expected, given


async def test_fills_rows_pin_their_shape(known: tuple[LedgerReader, dict[str, str]]) -> None:
    """fills: execution id, order ids, side, qty, price, fee as exact strings, broker and local times."""
    ledger, _ = known
    rows = await inspection.fills(ledger)
    assert rows[0] == {
        "execution_id": "x-1",
        "client_order_id": "aq-1",
        "broker_order_id": "b-1",
        "strategy_id": "sma-aapl",
        "symbol": "AAPL",
        "side": "buy",
        "qty": "4",
        "price": "100.5",
        "fee": "0.04",
        "broker_time": iso(T0, 2.5),
        "local_time": iso(T0, 3),
    }
    assert [r["execution_id"] for r in await inspection.fills(ledger, since_ns=ns(T1))] == ["x-2"]
    assert await inspection.fills(ledger, symbol="MSFT") == []


async def test_positions_are_marked_at_the_last_fill(known: tuple[LedgerReader, dict[str, str]]) -> None:
    """positions: qty, average price, realized P&L, and unrealized at the last fill price, saying so."""
    ledger, _ = known
    assert await inspection.positions(ledger) == [
        {
            "strategy_id": "sma-aapl",
            "symbol": "AAPL",
            "qty": "1",
            "avg_price": "100.5",
            "realized_pnl": "4.0",
            "unrealized_pnl": "1.5",
            "mark_price": "102",
            "mark_price_source": "last_fill",
            "mark_time": None,
            "fees": "0.07",
        }
    ]


async def test_pnl_today_counts_only_fills_since_utc_midnight(
    known: tuple[LedgerReader, dict[str, str]],
) -> None:
    """Today's realized P&L is the running total now minus the total before midnight (4 - 1 = 3)."""
    ledger, _ = known
    assert await inspection.pnl_today(ledger, ns(NOW)) == {
        "since": "2026-01-06T00:00:00.000000Z",
        "realized": "3.0",
        "fees": "0.02",
        "unrealized": "1.5",
        "mark_price_source": "last_fill",
    }
    tomorrow = await inspection.pnl_today(ledger, ns(NOW + timedelta(days=1)))
    assert Decimal(tomorrow["realized"]) == Decimal(tomorrow["fees"]) == 0


async def test_incidents_say_what_happened_what_to_do_and_state(
    known: tuple[LedgerReader, dict[str, str]],
) -> None:
    """incidents: message, action and open/resolved state; --open leaves out the resolved one."""
    ledger, ids = known
    rows = await inspection.incidents(ledger)
    assert [(r["incident_id"], r["state"]) for r in rows] == [
        (ids["open"], "open"),
        (ids["resolved"], "resolved"),
    ]
    assert rows[1] == {
        "incident_id": ids["resolved"],
        "state": "resolved",
        "kind": "illegal_transition",
        "subject": "aq-1",
        "scope": "sma-aapl",
        "message": "fill after cancel",
        "action": "check the fills",
        "opened": iso(T0, 6),
        "resolved": iso(T1, 200),
        "resolved_by": "ops",
        "resolution_note": "checked",
        "details": {},
    }
    assert [r["incident_id"] for r in await inspection.incidents(ledger, open_only=True)] == [ids["open"]]


def status_file(path: Path, written: datetime, pid: int | None = None) -> Path:
    """A status side file as the daemon writes it; by default from this (live) process."""
    body = {
        "pid": os.getpid() if pid is None else pid,
        "started": iso(written - timedelta(hours=1)),
        "written": iso(written),
        "trading_state": "active",
        "healthy": True,
        "log_records_dropped": 7,
        "workers": {
            "strategy": {"running": True, "finished": False, "restarts": 0, "last_heartbeat": iso(written)},
            "execution": {"running": True, "finished": False, "restarts": 1, "last_heartbeat": iso(written)},
        },
    }
    path.write_text(json.dumps(body))
    return path


async def test_status_with_a_fresh_status_file(
    known: tuple[LedgerReader, dict[str, str]], tmp_path: Path
) -> None:
    """status: a status file written within 5 s means running, with pid and each worker's heartbeat."""
    ledger, ids = known
    side = status_file(tmp_path / "ledger.db.status.json", NOW - timedelta(seconds=1))
    status = await inspection.status(ledger, side, ns(NOW))
    assert list(status) == [
        "daemon",
        "trading_state",
        "trading_state_reason",
        "trading_state_actor",
        "trading_state_since",
        "paused",
        "last_reconciliation",
        "open_incidents",
        "open_orders",
        "positions",
        "account",
        "pnl_today",
    ]
    assert status["daemon"] == {
        "running": True,
        "note": f"running (pid {os.getpid()})",
        "pid": os.getpid(),
        "started": iso(NOW - timedelta(hours=1, seconds=1)),
        "written": iso(NOW - timedelta(seconds=1)),
        "healthy": True,
        "unhealthy": [],
        "broker": None,
        "reconciliation_failure": None,
        "ledger_disk_full": None,
        "market_data_ended": None,
        "trading_state": "active",
        "marks": {},
        "log_records_dropped": 7,
        "workers": [
            {
                "name": "execution",
                "state": "running",
                "running": True,
                "finished": False,
                "waiting": None,
                "restarts": 1,
                "last_heartbeat": iso(NOW - timedelta(seconds=1)),
            },
            {
                "name": "strategy",
                "state": "running",
                "running": True,
                "finished": False,
                "waiting": None,
                "restarts": 0,
                "last_heartbeat": iso(NOW - timedelta(seconds=1)),
            },
        ],
    }
    assert status["trading_state"] == "active"
    assert status["paused"] == [{"scope": "sma-msft", "reason": "earnings", "actor": "ops", "since": iso(T1)}]
    assert status["last_reconciliation"] == {
        "trigger": "startup",
        "result": "clean",
        "started": iso(T1),
        "finished": iso(T1, 20),
        "summary": {"repairs": 0},
    }
    assert [i["incident_id"] for i in status["open_incidents"]] == [ids["open"]]
    assert set(status["open_incidents"][0]) == {"incident_id", "kind", "scope", "message", "action", "opened"}
    assert status["open_orders"] == 1
    assert status["pnl_today"]["realized"] == "3.0"
    assert status["positions"] == await inspection.positions(ledger)
    json.dumps(status)  # every value is JSON-ready as is
    assert "  logging: 7 log record(s) dropped" in "\n".join(render.status_lines(status))


async def test_status_without_or_with_a_stale_status_file(
    known: tuple[LedgerReader, dict[str, str]], tmp_path: Path
) -> None:
    """status: no status file, or one older than 5 s, says the daemon is not running (with the old pid)."""
    ledger, _ = known
    missing = tmp_path / "absent.status.json"
    status = await inspection.status(ledger, missing, ns(NOW))
    assert status["daemon"]["running"] is False
    assert status["daemon"]["note"] == f"not running (no status file at {missing})"
    assert status["daemon"]["workers"] == []
    stale = status_file(tmp_path / "stale.status.json", NOW - timedelta(seconds=30))
    daemon = (await inspection.status(ledger, stale, ns(NOW)))["daemon"]
    assert (daemon["running"], daemon["pid"], daemon["healthy"]) == (False, os.getpid(), None)
    assert daemon["note"] == f"not running (status file last written 30.0 s ago by pid {os.getpid()})"
    assert len(daemon["workers"]) == 2


async def test_status_file_of_an_exited_daemon(
    known: tuple[LedgerReader, dict[str, str]], tmp_path: Path
) -> None:
    """status: a fresh status file whose pid has exited (a daemon just stopped) means not running."""
    ledger, _ = known
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await child.wait()
    pid = child.pid
    side = status_file(tmp_path / "gone.status.json", NOW, pid=pid)
    daemon = (await inspection.status(ledger, side, ns(NOW)))["daemon"]
    assert (daemon["running"], daemon["pid"]) == (False, pid)
    assert daemon["note"] == f"not running (pid {pid} has exited; status file last written 0 ms ago)"


async def test_trace_of_a_partially_filled_then_canceled_order(
    known: tuple[LedgerReader, dict[str, str]], tmp_path: Path
) -> None:
    """trace: decision, risk checks, reservation, accepted, partial fill, fill row, canceled, in time
    order, with the log lines bearing the order's ids merged in by timestamp."""
    ledger, ids = known
    log = tmp_path / "autoquant.log"
    write_log(log)
    entries = await trace(ledger, "aq-1", log)
    assert entries is not None
    story = [(e["what"], e.get("stage") or e.get("event")) for e in entries]
    assert story == [
        ("decision", None),
        ("risk_check", "decision"),
        ("reserved", None),
        ("risk_check", "submit"),
        ("log", "order_submitted"),
        ("transition", "accepted"),
        ("transition", "partial_fill"),
        ("fill", None),
        ("log", "cancel_requested"),
        ("transition", "canceled"),
        ("incident", None),
    ]
    times = [e["time"] for e in entries]
    assert times == sorted(times)
    assert entries[0] == {
        "what": "decision",
        "time": iso(T0),
        "decision_id": "d-1",
        "strategy_id": "sma-aapl",
        "symbol": "AAPL",
        "action": "buy",
        "reason": "buy signal",
        "data_time": iso(T0 - timedelta(minutes=1)),
        "inputs": {"fast": "101", "slow": "100"},
    }
    assert entries[6] == {
        "what": "transition",
        "time": iso(T0, 3),
        "broker_time": iso(T0, 2.5),
        "event": "partial_fill",
        "client_order_id": "aq-1",
        "broker_order_id": "b-1",
        "status": "partially_filled",
        "filled_qty": "4",
        "reason": None,
    }
    assert entries[7] == {
        "what": "fill",
        "time": iso(T0, 3),
        "broker_time": iso(T0, 2.5),
        "client_order_id": "aq-1",
        "broker_order_id": "b-1",
        "execution_id": "x-1",
        "side": "buy",
        "qty": "4",
        "price": "100.5",
        "fee": "0.04",
        "position_qty_after": "4",
    }
    assert entries[8] == {
        "what": "log",
        "time": iso(T0, 4),
        "level": "info",
        "event": "cancel_requested",
        "worker": "execution",
        "fields": {"broker_order_id": "b-1", "logger": "autoquant.execution"},
    }
    assert entries[10]["incident_id"] == ids["resolved"]
    assert set(entries[1]) == {
        "what",
        "time",
        "decision_id",
        "client_order_id",
        "stage",
        "allowed",
        "reason",
        "checks",
    }
    assert set(entries[2]) == {
        "what",
        "time",
        "client_order_id",
        "decision_id",
        "strategy_id",
        "symbol",
        "side",
        "qty",
        "order_type",
        "time_in_force",
        "limit_price",
        "stop_price",
        "notional",
        "trail_price",
        "trail_percent",
        "extended_hours",
    }
    for entry in entries:
        assert "\n" not in describe(entry) and describe(entry).startswith(entry["time"])


async def test_trace_finds_the_same_story_from_any_of_its_ids(
    known: tuple[LedgerReader, dict[str, str]],
) -> None:
    """The decision id, client order id and broker order id of one order trace the same entries."""
    ledger, _ = known
    by_order = await trace(ledger, "aq-1")
    assert by_order is not None and "log" not in {e["what"] for e in by_order}
    assert await trace(ledger, "d-1") == by_order
    assert await trace(ledger, "b-1") == by_order
    assert await trace(ledger, "nobody") is None


async def test_open_readonly_refuses_without_changing_anything(tmp_path: Path) -> None:
    """open_readonly refuses a missing ledger (creating nothing), a non-SQLite file and a newer one."""
    missing = tmp_path / "missing.db"
    with pytest.raises(LedgerError, match="no ledger at"):
        await inspection.open_readonly(missing)
    assert list(tmp_path.iterdir()) == []
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all")
    with pytest.raises(LedgerCorrupt, match="not an SQLite database"):
        await inspection.open_readonly(garbage)
    newer = tmp_path / "newer.db"
    await build(newer)
    make_too_new(newer)
    before = newer.read_bytes()
    with pytest.raises(LedgerTooNew, match="newer version"):
        await inspection.open_readonly(newer)
    assert newer.read_bytes() == before


def make_too_new(path: Path) -> None:
    """Record a migration this code does not have, as a newer autoquant would."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_ns)"
            " VALUES (99, '0099_future', 'x', 1)"
        )
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
