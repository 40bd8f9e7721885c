"""The SQLite ledger: append-only by construction, idempotent fills, projections, migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.domain.bars import Bar
from autoquant.domain.broker import BrokerAccount
from autoquant.domain.controls import Control, ControlKind, TradingState
from autoquant.domain.decisions import Action, Decision
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order, OrderEvent, OrderEventKind, OrderStatus
from autoquant.domain.values import Side
from autoquant.errors import LedgerCorrupt, MigrationMismatch
from autoquant.ledger import Ledger, migrations, rows
from autoquant.ledger.backup import BackupInfo
from autoquant.ledger.records import ReconciliationCursor, ReconciliationRun, RiskEvent
from autoquant.ledger.surface import AlertRecord, ManualOrder

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def reservation(coid: str = "aq-1", strategy: str = "s1", qty: str = "10", side: Side = Side.BUY) -> Order:
    return Order(
        client_order_id=coid, strategy_id=strategy, symbol="AAPL", side=side, qty=Decimal(qty), created_ns=1
    )


def fill(
    execution_id: str, qty: str = "1", price: str = "100", coid: str = "aq-1", side: Side = Side.BUY
) -> Fill:
    return Fill(
        execution_id=execution_id,
        client_order_id=coid,
        symbol="AAPL",
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        local_ts_ns=2,
    )


def event(kind: OrderEventKind, filled: str | None = None, coid: str = "aq-1") -> OrderEvent:
    return OrderEvent(
        client_order_id=coid,
        kind=kind,
        filled_qty=None if filled is None else Decimal(filled),
        broker_order_id="b-1",
        local_ts_ns=3,
    )


@pytest.fixture
async def ledger(tmp_ledger_path: Path) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(tmp_ledger_path)
    yield opened
    await opened.close()


def tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return [str(r[0]) for r in rows]


async def populate(ledger: Ledger) -> None:
    """One row in every table, through the ledger's own API."""
    decision = Decision(
        decision_id="d-1",
        strategy_id="s1",
        symbol="AAPL",
        action=Action.HOLD,
        reason="no_cross",
        data_time=T0,
    )
    seen_bar = Bar(
        symbol="AAPL",
        open_time=T0 - timedelta(minutes=1),
        close_time=T0,
        open=Decimal(1),
        high=Decimal(1),
        low=Decimal(1),
        close=Decimal(1),
        volume=Decimal(0),
        source="test",
    )
    await ledger.record_decision(decision, 1, bars=(seen_bar,), state_json="{}")
    await ledger.reserve(reservation())
    await ledger.apply_update(event(OrderEventKind.FILL, "10"), fill("x1", "10"))
    await ledger.append_control(Control(kind=ControlKind.PAUSE, reason="r", actor="op", local_ts_ns=1))
    incident, _ = await ledger.open_incident(
        kind="k", subject="s", scope="account", message="m", action="a", details={}, local_ts_ns=1
    )
    await ledger.append_control(
        Control(kind=ControlKind.HALT, reason="m", actor="reconciler", local_ts_ns=1), incident_id=incident
    )
    await ledger.resolve_incident(incident, "op", "n", 2)
    await ledger.append_risk_event(
        RiskEvent(
            decision_id="d-1",
            client_order_id="aq-1",
            strategy_id="s1",
            symbol="AAPL",
            stage="submit",
            allowed=True,
            reason=None,
            checks=[],
            local_ts_ns=1,
        )
    )
    await ledger.record_reconciliation(
        ReconciliationRun(trigger="startup", clean=True, summary={}, started_ns=1, finished_ns=2),
        cursor=ReconciliationCursor(fills_seq=1, cash=Decimal("100"), cash_at_ns=2),
    )
    await ledger.record_account(BrokerAccount(cash=Decimal(1), equity=Decimal(1), buying_power=Decimal(1)), 1)
    request = await ledger.request_cancel("aq-1", "r", "op", 1)
    await ledger.record_cancel_outcome(request, 0, "already filled", 2)
    flatten = await ledger.request_at_broker("flatten", "*", {}, "r", "op", 3)
    await ledger.record_request_outcome(flatten, True, "0 closing order(s)", 4)
    await ledger.record_backup(BackupInfo(Path("b.db"), 1, 1, 1, "0" * 64), "cli", 3)
    await asyncio.to_thread(_insert_restore, ledger.path)
    await ledger.adopt_order(reservation("aq-2"), "b-2", 1, 4)
    await ledger.record_alert(AlertRecord("al-1", "halted", "critical", "halted:account", 1, "t", "b", 1))
    await ledger.record_alert_delivery("al-1", "json://127.0.0.1", "delivered", 1, "", 2)
    await ledger.request_manual_order(
        ManualOrder("m-1", "operator", "AAPL", "buy", Decimal(1), "market", "day", None, "r", "op", 1)
    )


def _insert_restore(path: Path) -> None:
    """A restore row, as ``restore_ledger`` writes it into a restored copy (never into a live ledger)."""
    with sqlite3.connect(path, timeout=10) as conn:
        conn.execute(
            "INSERT INTO restores (source_path, source_sha256, backup_journal_seq, backup_last_ns,"
            " moved_aside, actor, local_ts_ns) VALUES ('b.db', ?, 1, 1, NULL, 'op', 3)",
            ("0" * 64,),
        )


async def test_every_table_refuses_update_and_delete(
    tmp_ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ledger table, each holding a row, aborts UPDATE and DELETE through its triggers."""
    monkeypatch.setattr(rows, "CHECKPOINT_EVERY", 1)
    async with await Ledger.open(tmp_ledger_path) as ledger:
        await populate(ledger)
    names = tables(tmp_ledger_path)
    conn = sqlite3.connect(tmp_ledger_path)
    try:
        for name in names:
            assert conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] > 0, name
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(f"UPDATE {name} SET rowid = rowid")
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(f"DELETE FROM {name}")
    finally:
        conn.close()


async def test_reservation_is_unique_by_client_order_id(ledger: Ledger) -> None:
    """A second reservation under the same client order id is refused and changes nothing."""
    assert await ledger.reserve(reservation()) is True
    assert await ledger.reserve(reservation(qty="99")) is False
    stored = await ledger.get_order("aq-1")
    assert stored is not None and stored.qty == 10 and stored.status is OrderStatus.RESERVED


async def test_duplicate_fill_is_a_no_op(ledger: Ledger) -> None:
    """Appending the same execution id twice records one fill and one position change."""
    await ledger.reserve(reservation())
    assert await ledger.append_fill(fill("x1", "3")) is True
    assert await ledger.append_fill(fill("x1", "3")) is False
    positions = await ledger.positions()
    assert positions[("s1", "AAPL")].qty == 3
    assert len(await ledger.fills_for_order("aq-1")) == 1


async def test_updates_in_any_order_converge(ledger: Ledger) -> None:
    """Fill before ack, duplicated and reordered updates end in one state with fills counted once."""
    await ledger.reserve(reservation(qty="3"))
    updates = [
        (event(OrderEventKind.PARTIAL_FILL, "1"), fill("x1")),
        (event(OrderEventKind.FILL, "3"), fill("x3")),
        (event(OrderEventKind.ACCEPTED), None),
        (event(OrderEventKind.PARTIAL_FILL, "2"), fill("x2")),
        (event(OrderEventKind.PARTIAL_FILL, "1"), fill("x1")),
    ]
    for item, item_fill in updates:
        result = await ledger.apply_update(item, item_fill)
        assert result.illegal is None
    order = await ledger.get_order("aq-1")
    assert order is not None and order.status is OrderStatus.FILLED and order.filled_qty == 3
    assert order.broker_order_id == "b-1"
    assert (await ledger.positions())[("s1", "AAPL")].qty == 3
    assert await ledger.open_orders() == []


async def test_illegal_event_is_reported_and_not_applied(ledger: Ledger) -> None:
    """An event the table refuses comes back as illegal; the order keeps its state, the fill is kept."""
    await ledger.reserve(reservation(qty="1"))
    await ledger.apply_event(event(OrderEventKind.REJECTED))
    result = await ledger.apply_update(event(OrderEventKind.FILL, "1"), fill("x9"))
    assert result.illegal is not None and result.fill_recorded is True
    order = await ledger.get_order("aq-1")
    assert order is not None and order.status is OrderStatus.REJECTED


async def test_ten_fills_of_a_tenth_in_the_ledger(ledger: Ledger) -> None:
    """Ten fills of 0.1 stored and projected make a position of exactly 1."""
    await ledger.reserve(reservation(qty="1"))
    for n in range(10):
        await ledger.append_fill(fill(f"x{n}", "0.1"))
    assert (await ledger.account_positions())["AAPL"] == Decimal("1")


async def test_open_orders_projection_survives_checkpoints(
    tmp_ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Open orders read from checkpoints plus recent rows equal the full answer, across reopen."""
    monkeypatch.setattr(rows, "CHECKPOINT_EVERY", 4)
    async with await Ledger.open(tmp_ledger_path) as ledger:
        for n in range(20):
            await ledger.reserve(reservation(f"aq-{n}"))
            if n % 3 == 0:
                await ledger.apply_event(event(OrderEventKind.CANCELED, coid=f"aq-{n}"))
        expected = {f"aq-{n}" for n in range(20) if n % 3}
        assert {o.client_order_id for o in await ledger.open_orders()} == expected
    async with await Ledger.open(tmp_ledger_path) as ledger:
        assert {o.client_order_id for o in await ledger.open_orders()} == expected
        assert set((await ledger.projection()).open_orders) == expected
    with sqlite3.connect(tmp_ledger_path) as conn:
        assert conn.execute("SELECT count(*) FROM open_order_checkpoints").fetchone()[0] >= 3


async def test_concurrent_appends_share_transactions(ledger: Ledger) -> None:
    """Sixty-four concurrent appenders all land, each exactly once."""
    await ledger.reserve(reservation(qty="64"))
    results = await asyncio.gather(*(ledger.append_fill(fill(f"c{n}")) for n in range(64)))
    assert all(results)
    assert (await ledger.positions())[("s1", "AAPL")].qty == 64


async def test_failed_write_in_a_batch_rolls_back_only_itself(ledger: Ledger) -> None:
    """A fill for an unknown order fails alone; the writes batched with it are kept."""
    await ledger.reserve(reservation())
    outcomes = await asyncio.gather(
        ledger.append_fill(fill("ok1")),
        ledger.append_fill(fill("bad", coid="aq-unknown")),
        ledger.append_fill(fill("ok2")),
        return_exceptions=True,
    )
    assert outcomes[0] is True and outcomes[2] is True
    assert "never reserved" in str(outcomes[1])
    assert (await ledger.positions())[("s1", "AAPL")].qty == 2


async def test_controls_fold_into_state_and_survive_reopen(tmp_ledger_path: Path) -> None:
    """Pause, halt and resume are ledger events: the state after reopening is the same."""
    async with await Ledger.open(tmp_ledger_path) as ledger:
        await ledger.append_control(
            Control(kind=ControlKind.PAUSE, scope="s1", reason="r", actor="op", local_ts_ns=1)
        )
        await ledger.append_control(
            Control(kind=ControlKind.HALT, reason="loss", actor="kill", local_ts_ns=2)
        )
    async with await Ledger.open(tmp_ledger_path) as ledger:
        state = await ledger.control_state()
        assert state.trading_state is TradingState.HALTED and state.is_paused("s1")
        assert not state.is_paused("s2")
        await ledger.append_control(Control(kind=ControlKind.RESUME, reason="ok", actor="op", local_ts_ns=3))
        state = await ledger.control_state()
        assert state.trading_state is TradingState.ACTIVE and state.is_paused("s1")


async def test_decision_is_recorded_once(ledger: Ledger) -> None:
    """Re-recording a decision id (a replay after restart) is refused without error."""
    decision = Decision(
        decision_id="d-1",
        strategy_id="s1",
        symbol="AAPL",
        action=Action.HOLD,
        reason="no_cross",
        data_time=T0,
    )
    assert await ledger.record_decision(decision, 1) is True
    assert await ledger.record_decision(decision, 2) is False


async def test_incident_is_not_opened_twice_while_open(ledger: Ledger) -> None:
    """The same kind and subject reuse the open incident; after resolution a new one opens."""
    args = {
        "kind": "unknown_order",
        "subject": "b-9",
        "scope": "account",
        "message": "m",
        "action": "a",
        "details": {},
        "local_ts_ns": 1,
    }
    first, created = await ledger.open_incident(**args)  # type: ignore[arg-type]
    again, created_again = await ledger.open_incident(**args)  # type: ignore[arg-type]
    assert created and not created_again and first == again
    await ledger.resolve_incident(first, "op", "checked", 2)
    third, created_third = await ledger.open_incident(**args)  # type: ignore[arg-type]
    assert created_third and third != first
    assert [i.incident_id for i in await ledger.incidents(open_only=True)] == [third]


async def test_file_that_is_not_sqlite_is_refused_unchanged(tmp_path: Path) -> None:
    """A ledger path holding another kind of file is refused, and the file is left as it was."""
    path = tmp_path / "notes.db"
    path.write_text("hello, this is not a database\n" * 10)
    before = path.read_bytes()
    with pytest.raises(LedgerCorrupt, match="not an SQLite database"):
        await Ledger.open(path)
    assert path.read_bytes() == before
    assert not (tmp_path / "notes.db-wal").exists()


async def test_corrupt_ledger_is_refused(tmp_ledger_path: Path) -> None:
    """A ledger whose pages were overwritten is refused with a message saying what to do."""
    async with await Ledger.open(tmp_ledger_path) as ledger:
        await ledger.reserve(reservation())
    data = bytearray(tmp_ledger_path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    tmp_ledger_path.write_bytes(bytes(data))
    with pytest.raises(LedgerCorrupt, match="corrupt"):
        async with await Ledger.open(tmp_ledger_path) as ledger:
            await ledger.open_orders()


def test_edited_migration_is_refused(tmp_path: Path) -> None:
    """A migration file changed after it was applied makes the ledger refuse to open."""
    path = tmp_path / "l.db"
    conn = sqlite3.connect(path, isolation_level=None)
    known = migrations.discover()
    migrations.migrate(conn, known)
    edited = [migrations.Migration(m.version, m.name, m.sql + "\n-- edited") for m in known]
    with pytest.raises(MigrationMismatch, match="changed after it was applied"):
        migrations.migrate(conn, edited)
    conn.close()


def test_failed_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    """A migration that fails halfway is rolled back whole and not recorded."""
    path = tmp_path / "l.db"
    conn = sqlite3.connect(path, isolation_level=None)
    known = migrations.discover()
    broken = [*known, migrations.Migration(len(known) + 1, "9999_broken", "CREATE TABLE t (a); SELECT nope;")]
    with pytest.raises(sqlite3.OperationalError):
        migrations.migrate(conn, broken)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone()[0] == 0
    assert len(migrations.applied(conn)) == len(known)
    conn.close()
