"""The ledger's global journal, its read-only reader, its in-memory projection and its migration forward."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoquant.domain.broker import BrokerAccount
from autoquant.domain.controls import Control, ControlKind
from autoquant.domain.decisions import Action, Decision
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.errors import LedgerError
from autoquant.ledger import Ledger, LedgerReader, migrations
from autoquant.ledger.projection import Projection
from autoquant.ledger.records import RiskEvent
from tests.ledger.test_ledger import T0, event, fill, reservation


def decision(n: int) -> Decision:
    return Decision(
        decision_id=f"d-{n}", strategy_id="s1", symbol="AAPL", action=Action.HOLD, reason="r", data_time=T0
    )


def control(kind: ControlKind, ts: int = 1) -> Control:
    return Control(kind=kind, reason=f"{kind.value} by test", actor="op", local_ts_ns=ts)


def comparable(projection: Projection) -> dict[str, object]:
    return {
        "positions": projection.positions,
        "open_orders": projection.open_orders,
        "controls": projection.controls,
        "control_seq": projection.control_seq,
        "control_journal_seq": projection.control_journal_seq,
        "submissions": list(projection.submissions),
        "outcomes": list(projection.outcomes),
    }


async def test_events_come_back_in_global_sequence_order(tmp_ledger_path: Path) -> None:
    """events_after returns every table's events in commit order (not by their clocks), paged by seq."""
    async with await Ledger.open(tmp_ledger_path) as ledger:
        # Clocks deliberately out of order: the journal follows commits, not local_ts_ns.
        await ledger.record_decision(decision(1), 50)
        await ledger.reserve(reservation("aq-1"))
        await ledger.append_control(control(ControlKind.PAUSE, ts=10))
        await ledger.apply_update(event(OrderEventKind.PARTIAL_FILL, "1"), fill("x1", "1"))
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
                local_ts_ns=5,
            )
        )
        await ledger.record_account(
            BrokerAccount(cash=Decimal(1), equity=Decimal(2), buying_power=Decimal(1)), 7
        )
        events = await ledger.events_after(0)
        assert [e.kind for e in events] == [
            "decision",
            "order_reserved",
            "control",
            "order_event",
            "fill",
            "risk_event",
            "account_snapshot",
        ]
        assert [e.seq for e in events] == sorted(e.seq for e in events)
        assert events[0].fields["decision_id"] == "d-1" and events[4].fields["execution_id"] == "x1"
        assert events[5].fields["checks"] == []  # JSON columns come back decoded
        page = await ledger.events_after(events[1].seq, limit=2)
        assert [e.kind for e in page] == ["control", "order_event"]
        assert await ledger.last_seq() == events[-1].seq


def test_a_reader_has_no_write_method() -> None:
    """LedgerReader carries none of Ledger's write methods: read-only is a type, not a flag."""
    reads = {name for name, _ in inspect.getmembers(LedgerReader, inspect.isfunction)}
    writes = {name for name, _ in inspect.getmembers(Ledger, inspect.isfunction)} - reads
    assert {"append_control", "record_decision", "reserve", "apply_update", "append_fill"} <= writes
    for name in writes:
        assert not hasattr(LedgerReader, name), name


async def test_a_reader_opens_read_only_and_never_creates(tmp_path: Path) -> None:
    """A reader opened on a ledger answers named reads and has no write method; a missing file is refused."""
    path = tmp_path / "ledger.db"
    async with await Ledger.open(path) as ledger:
        await ledger.append_control(control(ControlKind.HALT))
    async with await LedgerReader.open(path) as reader:
        assert not hasattr(reader, "append_control")
        assert (await reader.control_state()).trading_state.value == "halted"
        assert [e.kind for e in await reader.events_after(0)] == ["control"]
    with pytest.raises(LedgerError):
        await LedgerReader.open(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


async def test_a_cancelled_callers_write_still_commits(tmp_ledger_path: Path) -> None:
    """A write whose caller is cancelled while it waits for the commit is committed all the same."""
    async with await Ledger.open(tmp_ledger_path) as ledger:
        blocker = sqlite3.connect(tmp_ledger_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the writer waits on this lock: the write cannot finish yet
        task = asyncio.ensure_future(ledger.append_control(control(ControlKind.HALT)))
        await ledger.last_seq()  # a read round trip: the task has run and queued its write
        assert task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        blocker.execute("ROLLBACK")
        blocker.close()
    async with await Ledger.open(tmp_ledger_path) as reopened:
        assert (await reopened.control_state()).trading_state.value == "halted"


Op = tuple[str, int]
OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "reserve",
                "accept",
                "reject",
                "unknown",
                "partial",
                "fill",
                "cancel",
                "stray_fill",
                "control",
                "account",
            ]
        ),
        st.integers(min_value=0, max_value=5),
    ),
    max_size=30,
)


async def apply_ops(ledger: Ledger, ops: list[Op]) -> None:
    """Apply ``ops`` in concurrent groups of three, so batching and savepoint failures are exercised."""
    kinds = [ControlKind.PAUSE, ControlKind.RESUME, ControlKind.HALT, ControlKind.REDUCE]
    executions = 0

    async def one(op: Op) -> None:
        nonlocal executions
        name, n = op
        coid = f"aq-{n}"
        executions += 1
        try:
            if name == "reserve":
                await ledger.reserve(reservation(coid, strategy=f"s{n % 2}", qty="3"))
            elif name == "accept":
                await ledger.apply_event(event(OrderEventKind.ACCEPTED, coid=coid))
            elif name == "reject":
                await ledger.apply_event(event(OrderEventKind.REJECTED, coid=coid))
            elif name == "unknown":
                await ledger.apply_event(event(OrderEventKind.SUBMIT_UNKNOWN, coid=coid))
            elif name == "partial":
                await ledger.apply_update(
                    event(OrderEventKind.PARTIAL_FILL, "1", coid), fill(f"e{executions}", "1", coid=coid)
                )
            elif name == "fill":
                await ledger.apply_update(
                    event(OrderEventKind.FILL, "3", coid), fill(f"e{executions}", "3", coid=coid)
                )
            elif name == "cancel":
                await ledger.apply_event(event(OrderEventKind.CANCELED, coid=coid))
            elif name == "stray_fill":
                await ledger.append_fill(fill(f"e{executions}", "1", coid=coid))
            elif name == "control":
                await ledger.append_control(control(kinds[n % 4], ts=n))
            else:
                await ledger.record_account(
                    BrokerAccount(cash=Decimal(n), equity=Decimal(100 + n), buying_power=Decimal(n)), n
                )
        except LedgerError:
            pass  # an event or fill for an order never reserved: refused alone, like in production

    for start in range(0, len(ops), 3):
        await asyncio.gather(*(one(op) for op in ops[start : start + 3]))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_projection_equals_a_fresh_read_from_disk(ops: list[Op]) -> None:
    """After any sequence of (partly concurrent) writes, the in-memory projection equals the ledger read
    back from disk, before and after reopening; so do the kill switch's reads."""

    async def scenario(path: Path) -> None:
        async with await Ledger.open(path) as ledger:
            await ledger.book(0)
            await apply_ops(ledger, ops)
            memory = await ledger.projection_snapshot()
            disk = await ledger.projection()
            assert comparable(memory) == comparable(disk)
            assert (await ledger.book(0)).equity == await ledger.equity_since(0)
            streak, recent, unknown = (
                await ledger.reject_streak(),
                await ledger.submissions_since(0),
                await ledger.unknown_orders(),
            )
        async with await Ledger.open(path) as reopened:
            assert comparable(await reopened.projection_snapshot()) == comparable(disk)
            assert await reopened.reject_streak() == streak
            assert await reopened.submissions_since(0) == recent
            assert await reopened.unknown_orders() == unknown

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(scenario(Path(directory) / "ledger.db"))


async def test_kill_switch_reads_survive_reopening(tmp_ledger_path: Path) -> None:
    """Reject streak, submissions in a time window and UNKNOWN orders come back the same after a restart."""
    async with await Ledger.open(tmp_ledger_path) as ledger:
        for n in range(6):
            await ledger.reserve(reservation(f"aq-{n}"))
        await ledger.apply_event(event(OrderEventKind.REJECTED, coid="aq-0"))
        await ledger.apply_event(event(OrderEventKind.ACCEPTED, coid="aq-1"))  # ends the first streak
        await ledger.apply_event(event(OrderEventKind.REJECTED, coid="aq-2"))
        await ledger.append_control(control(ControlKind.RESUME))
        resumed = await ledger.control_journal_seq()
        await ledger.apply_event(event(OrderEventKind.REJECTED, coid="aq-3"))
        await ledger.apply_event(event(OrderEventKind.REJECTED, coid="aq-4"))
        await ledger.apply_event(event(OrderEventKind.SUBMIT_UNKNOWN, coid="aq-5"))
        # Sent with an unknown outcome, then resolved as rejected: the rejection is its outcome.
        await ledger.apply_event(event(OrderEventKind.REJECTED, coid="aq-5"))
        assert await ledger.reject_streak() == 4 and await ledger.reject_streak(resumed) == 3
    async with await Ledger.open(tmp_ledger_path) as reopened:
        assert await reopened.reject_streak() == 4
        assert await reopened.reject_streak(resumed) == 3
        assert await reopened.control_journal_seq() == resumed
        assert await reopened.submissions_since(0) == [3] * 6  # the test events' local time
        assert await reopened.submissions_since(4) == []
        await reopened.reserve(reservation("aq-6"))
        await reopened.apply_event(event(OrderEventKind.SUBMIT_UNKNOWN, coid="aq-6"))
    async with await LedgerReader.open(tmp_ledger_path) as reader:
        (unknown,) = await reader.unknown_orders()
        assert unknown.client_order_id == "aq-6" and unknown.status is OrderStatus.UNKNOWN
        assert unknown.updated_ns == 3  # when it became UNKNOWN: its age is now - updated_ns
        assert await reader.reject_streak() == 4  # an unknown outcome neither counts nor resets it


def old_ledger(path: Path) -> str:
    """A ledger with only migrations 0001 and 0002 and some history, written with raw SQL as the old
    version wrote it; returns the incident id its halt names in free text."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    migrations.migrate(conn, migrations.discover()[:2])
    statements = [
        "INSERT INTO decisions (decision_id, strategy_id, symbol, action, reason, data_time_ns, inputs_json,"
        " local_ts_ns) VALUES ('d-1', 's1', 'AAPL', 'buy', 'cross', 1, '{}', 10)",
        "INSERT INTO orders (client_order_id, decision_id, strategy_id, symbol, side, qty, order_type,"
        " time_in_force, local_ts_ns) VALUES ('aq-1', 'd-1', 's1', 'AAPL', 'buy', '2', 'market', 'day', 11)",
        "INSERT INTO order_events (client_order_id, kind, status_after, filled_qty_after, broker_order_id,"
        " local_ts_ns) VALUES ('aq-1', 'rejected', 'rejected', '0', 'b-1', 12)",
        "INSERT INTO order_closures (client_order_id, status, local_ts_ns) VALUES ('aq-1', 'rejected', 12)",
        "INSERT INTO orders (client_order_id, strategy_id, symbol, side, qty, order_type, time_in_force,"
        " local_ts_ns) VALUES ('aq-2', 's1', 'AAPL', 'buy', '2', 'market', 'day', 13)",
        "INSERT INTO order_events (client_order_id, kind, status_after, filled_qty_after, broker_order_id,"
        " local_ts_ns) VALUES ('aq-2', 'partial_fill', 'partially_filled', '1', 'b-2', 15)",
        "INSERT INTO fills (execution_id, client_order_id, broker_order_id, strategy_id, symbol, side, qty,"
        " price, fee, local_ts_ns, position_qty, position_avg_price, position_realized_pnl, position_fees)"
        " VALUES ('x-1', 'aq-2', 'b-2', 's1', 'AAPL', 'buy', '1', '100', '0', 14, '1', '100', '0', '0')",
        "INSERT INTO position_keys (strategy_id, symbol) VALUES ('s1', 'AAPL')",
        "INSERT INTO incidents (incident_id, kind, subject, scope, message, action, details_json,"
        " local_ts_ns) VALUES"
        " ('inc-0123456789abcdef', 'unknown_order', 'aq-9', 'account', 'm', 'a', '{}', 16)",
        "INSERT INTO controls (kind, scope, reason, actor, local_ts_ns)"
        " VALUES ('halt', 'account', 'm (incident inc-0123456789abcdef)', 'reconciler', 17)",
        "INSERT INTO reconciliations (trigger, clean, summary_json, started_ns, finished_ns) VALUES"
        ' (\'startup\', 0, \'{"cash": "99.5", "cash_at_ns": 18, "fills_seq": 1}\', 18, 19)',
    ]
    for statement in statements:
        conn.execute(statement)
    conn.close()
    return "inc-0123456789abcdef"


async def test_an_old_schema_ledger_migrates_forward(tmp_ledger_path: Path) -> None:
    """A ledger written before 0003 opens, migrates, and reads back: history journalled in time order,
    the halt linked to its incident, the reconciler's cursor taken from the last run, the projection."""
    incident_id = old_ledger(tmp_ledger_path)
    async with await Ledger.open(tmp_ledger_path) as ledger:
        kinds = [e.kind for e in await ledger.events_after(0)]
        assert kinds == [
            "decision",
            "order_reserved",
            "order_event",
            "order_reserved",
            "fill",
            "order_event",
            "incident",
            "control",
            "reconciliation",
        ]
        assert await ledger.incident_has_control(incident_id)
        cursor = await ledger.reconciliation_cursor()
        assert cursor is not None and (cursor.fills_seq, cursor.cash, cursor.cash_at_ns) == (
            1,
            Decimal("99.5"),
            18,
        )
        assert (await ledger.control_state()).trading_state.value == "halted"
        assert [o.client_order_id for o in await ledger.open_orders()] == ["aq-2"]
        assert (await ledger.positions())[("s1", "AAPL")].qty == Decimal(1)
        assert await ledger.reject_streak() == 0  # aq-2's partial fill came after aq-1's rejection
        assert comparable(await ledger.projection_snapshot()) == comparable(await ledger.projection())
        # New writes join the same global sequence after the migrated history.
        await ledger.append_control(control(ControlKind.RESUME))
        assert [e.kind for e in await ledger.events_after(0)][-1] == "control"
    with sqlite3.connect(tmp_ledger_path) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == [
            1,
            2,
            3,
            4,
        ]


async def test_reads_do_not_wait_behind_a_pending_write(tmp_ledger_path: Path) -> None:
    """Disk reads run on their own connection: they answer while the writer is stuck in a transaction."""
    async with await Ledger.open(tmp_ledger_path) as ledger:
        await ledger.record_decision(decision(1), 1)
        blocker = sqlite3.connect(tmp_ledger_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the writer cannot commit until this lets go
        pending = asyncio.ensure_future(ledger.record_decision(decision(2), 2))
        assert [e.fields["decision_id"] for e in await ledger.events_after(0)] == ["d-1"]
        assert not pending.done()
        blocker.execute("ROLLBACK")
        blocker.close()
        assert await pending
        assert [e.fields["decision_id"] for e in await ledger.events_after(0)] == ["d-1", "d-2"]
