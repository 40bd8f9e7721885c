"""The ledger's backtest economies: holds written in batches ahead of the next write, and the polled
oversight reads (controls, open incidents, pending cancels) answered from memory until a commit that
could change them, ours or another connection's."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.clocks import VirtualClock
from autoquant.domain.controls import Control, ControlKind, TradingState
from autoquant.domain.decisions import Action, Decision
from autoquant.domain.orders import Order
from autoquant.domain.values import Side
from autoquant.ledger import Ledger

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def hold(n: int) -> Decision:
    return Decision(
        decision_id=f"d-{n}",
        strategy_id="s1",
        symbol="AAPL",
        action=Action.HOLD,
        reason="no_cross",
        data_time=T0,
    )


def decision_seqs(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [str(r[0]) for r in conn.execute("SELECT decision_id FROM decisions ORDER BY seq")]


@pytest.fixture
async def ledger(tmp_ledger_path: Path) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(tmp_ledger_path)
    yield opened
    await opened.close()


async def test_deferred_holds_commit_ahead_of_the_next_write(ledger: Ledger, tmp_ledger_path: Path) -> None:
    """Deferred holds are not written alone; the next write (a reservation) carries them, committed no
    later than it and in order, and their on-commit callbacks run once durable (False for a replay)."""
    seen: list[tuple[str, bool]] = []

    def noting(n: int) -> Callable[[bool], None]:
        return lambda new: seen.append((f"d-{n}", new))

    for n in (1, 2, 1):
        ledger.defer_decision(hold(n), n, on_commit=noting(n))
    assert decision_seqs(tmp_ledger_path) == []
    order = Order(
        client_order_id="aq-3", strategy_id="s1", symbol="AAPL", side=Side.BUY, qty=Decimal(1), created_ns=3
    )
    assert await ledger.reserve(order) is True  # any write: a reservation here
    assert decision_seqs(tmp_ledger_path) == ["d-1", "d-2"]
    assert await ledger.record_decision(hold(3), 3) is True
    assert decision_seqs(tmp_ledger_path) == ["d-1", "d-2", "d-3"]
    assert seen == [("d-1", True), ("d-2", True), ("d-1", False)]


async def test_flush_and_close_write_what_is_deferred(tmp_ledger_path: Path) -> None:
    """``flush`` writes the deferred holds and waits for them; ``close`` does not lose any either."""
    ledger = await Ledger.open(tmp_ledger_path)
    ledger.defer_decision(hold(1), 1)
    await ledger.flush()
    assert decision_seqs(tmp_ledger_path) == ["d-1"]
    ledger.defer_decision(hold(2), 2)
    await ledger.close()
    assert decision_seqs(tmp_ledger_path) == ["d-1", "d-2"]


async def test_open_incidents_and_cancels_follow_our_writes_and_another_connections(
    ledger: Ledger, tmp_ledger_path: Path
) -> None:
    """The cached open incidents and pending cancels change as soon as we, or another process (a
    second connection, as the CLI), commit one; the controls another process appends are seen too."""
    assert await ledger.incidents(open_only=True) == []
    assert await ledger.pending_cancel_requests() == []
    incident_id, _ = await ledger.open_incident(
        kind="k", subject="s", scope="account", message="m", action="a", details={}, local_ts_ns=1
    )
    assert [i.incident_id for i in await ledger.incidents(open_only=True)] == [incident_id]
    other = await Ledger.open(tmp_ledger_path)
    try:
        await other.resolve_incident(incident_id, "op", "done", 2)
        await other.request_cancel("*", "stop", "op", 3)
        await other.append_control(
            Control(kind=ControlKind.HALT, scope="account", reason="r", actor="op", local_ts_ns=4)
        )
    finally:
        await other.close()
    assert await ledger.incidents(open_only=True) == []
    assert [r.target for r in await ledger.pending_cancel_requests()] == ["*"]
    await ledger.last_control_seq()
    assert (await ledger.control_state()).trading_state is TradingState.HALTED
    request = (await ledger.pending_cancel_requests())[0]
    await ledger.record_cancel_outcome(request.seq, 0, "none open", 5)
    assert await ledger.pending_cancel_requests() == []


def test_foreign_commits_are_looked_for_once_per_period_of_the_loops_clock(tmp_ledger_path: Path) -> None:
    """With ``foreign_poll_s`` (a backtest's, on the virtual clock), another connection's control is
    folded in at the first hot read once the period has passed since the last look, not before."""
    clock = VirtualClock(autojump_threshold_s=0.0)

    async def main() -> list[TradingState]:
        ledger = await Ledger.open(tmp_ledger_path, durable=False, on_loop=True)
        ledger.foreign_poll_s = 300.0
        states = []
        try:
            await ledger.book(0)  # the first look
            other = await Ledger.open(tmp_ledger_path)
            try:
                await other.append_control(
                    Control(kind=ControlKind.HALT, scope="account", reason="r", actor="op", local_ts_ns=1)
                )
            finally:
                await other.close()
            await ledger.book(0)
            states.append((await ledger.control_state()).trading_state)
            await clock.sleep(299.0)
            await ledger.book(0)
            states.append((await ledger.control_state()).trading_state)
            await clock.sleep(1.0)
            await ledger.book(0)
            states.append((await ledger.control_state()).trading_state)
        finally:
            await ledger.close()
        return states

    assert clock.run(main()) == [TradingState.ACTIVE, TradingState.ACTIVE, TradingState.HALTED]


async def test_pending_broker_requests_follow_our_writes_and_another_connections(
    ledger: Ledger, tmp_ledger_path: Path
) -> None:
    """The cached pending replace and flatten requests (the execution sweep asks on every sweep)
    change as soon as we or another connection commit a request or an outcome."""
    assert await ledger.pending_broker_requests() == []
    seq = await ledger.request_at_broker("flatten", "*", {}, "stop", "op", 1)
    assert [r.seq for r in await ledger.pending_broker_requests()] == [seq]
    assert await ledger.record_request_outcome(seq, True, "flat", 2) is True
    assert await ledger.pending_broker_requests() == []
    other = await Ledger.open(tmp_ledger_path)
    try:
        second = await other.request_at_broker("flatten", "*", {}, "again", "op", 3)
    finally:
        await other.close()
    assert [r.seq for r in await ledger.pending_broker_requests()] == [second]
