"""After a restore, the reconciler adopts this account's broker orders the ledger lacks (real ledger,
real in-process paper exchange); an order that is not ours stays an incident."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.brokers.paper.broker import PaperBroker
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.clocks import FakeClock
from autoquant.domain.broker import OrderRequest
from autoquant.domain.ids import client_order_id
from autoquant.domain.values import Side
from autoquant.ledger import Ledger
from autoquant.runtime.config import PaperSettings
from autoquant.workers.reconciliation import Reconciler
from tests.ledger_sql import ledger_query

STRATEGIES = {"AAPL": {"sma-aapl"}, "MSFT": {"sma-msft"}}
BAR = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    async with await Ledger.open(tmp_path / "ledger.db") as opened:
        yield opened


@pytest.fixture
def exchange(tmp_path: Path, clock: FakeClock) -> Iterator[PaperExchange]:
    settings = PaperSettings(state_path=tmp_path / "paper.db", latency_s=0.05, partial_fill_probability=0.0)
    venue = PaperExchange(settings, clock, ("AAPL", "MSFT"))
    venue.set_price("AAPL", Decimal(100))
    venue.set_price("MSFT", Decimal(200))
    yield venue
    venue.close()


def record_restore(path: Path, backup_last_ns: int) -> None:
    """What `autoquant restore` writes into the restored copy (here into a ledger that saw nothing)."""
    with sqlite3.connect(path, timeout=10) as conn:
        conn.execute(
            "INSERT INTO restores (source_path, source_sha256, backup_journal_seq, backup_last_ns,"
            " moved_aside, actor, local_ts_ns) VALUES ('b.db', ?, 0, ?, NULL, 'op', ?)",
            ("0" * 64, backup_last_ns, backup_last_ns),
        )


async def test_restored_ledger_adopts_our_orders_once_and_reports_a_foreign_one(
    ledger: Ledger, exchange: PaperExchange, clock: FakeClock
) -> None:
    """Three filled orders under our id scheme are adopted (no decision), their fills appended once;
    a manual order is an unknown_order incident; trading is halted; a second run adopts nothing."""
    await asyncio.to_thread(record_restore, ledger.path, clock.now_ns())
    ours = [
        (client_order_id("sma-aapl", "AAPL", BAR, Side.BUY, 0), "AAPL"),
        (client_order_id("sma-aapl", "AAPL", BAR, Side.BUY, 1), "AAPL"),
        (client_order_id("sma-msft", "MSFT", BAR, Side.BUY, 0), "MSFT"),
    ]
    broker = PaperBroker(exchange)
    try:
        for coid, symbol in [*ours, ("manual-1", "AAPL")]:
            await broker.submit(
                OrderRequest(client_order_id=coid, symbol=symbol, side=Side.BUY, qty=Decimal(2))
            )
        clock.advance(0.1)
        list(exchange.process())  # they fill at the exchange; the restored ledger never hears of it
        reconciler = Reconciler(ledger, broker, clock, STRATEGIES)
        first = await reconciler.run("startup")
        second = await reconciler.run("periodic")
    finally:
        await broker.close()

    adopted = await ledger_query(ledger, "SELECT client_order_id FROM restore_adoptions ORDER BY seq")
    assert {row[0] for row in adopted} == {coid for coid, _ in ours}
    assert first.summary["adopted_after_restore"] and "adopted_after_restore" not in second.summary
    for coid, _ in ours:
        order = await ledger.get_order(coid)
        assert order is not None and order.decision_id is None and order.status.value == "filled"
    fills = await ledger_query(ledger, "SELECT client_order_id, count(*) FROM fills GROUP BY client_order_id")
    assert sorted(fills) == sorted((coid, 1) for coid, _ in ours)
    kinds = {i.kind for i in await ledger.incidents(open_only=True)}
    assert {"orders_adopted_after_restore", "unknown_order"} <= kinds
    assert (await ledger.control_state()).trading_state.value == "halted"
    assert await ledger.get_order("manual-1") is None


@pytest.mark.parametrize("fills_first", [False, True])
async def test_a_restored_ledger_adopts_a_notional_order_filled_or_not(
    ledger: Ledger, exchange: PaperExchange, clock: FakeClock, fills_first: bool
) -> None:
    """A notional buy of $500 sent after the backup is adopted with qty 0, whether it has filled yet or
    not; once filled, the ledger counts the shares the broker filled (about 5, after slippage) once."""
    await asyncio.to_thread(record_restore, ledger.path, clock.now_ns())
    coid = client_order_id("sma-aapl", "AAPL", BAR, Side.BUY, 0)
    broker = PaperBroker(exchange)
    try:
        await broker.submit(
            OrderRequest(client_order_id=coid, symbol="AAPL", side=Side.BUY, notional=Decimal(500))
        )
        if fills_first:
            clock.advance(0.1)
            list(exchange.process())
        reconciler = Reconciler(ledger, broker, clock, STRATEGIES)
        first = await reconciler.run("startup")
        assert first.summary["adopted_after_restore"] == [coid]
        adopted = await ledger.get_order(coid)
        assert adopted is not None and (adopted.qty, adopted.notional) == (Decimal(0), Decimal(500))
        clock.advance(0.1)
        list(exchange.process())
        await reconciler.run("periodic")
        at_broker = await broker.get_by_client_order_id(coid)
    finally:
        await broker.close()
    assert at_broker is not None and 4.99 < at_broker.filled_qty <= 5
    final = await ledger.get_order(coid)
    assert final is not None and final.status.value == "filled" and final.filled_qty == at_broker.filled_qty
    assert (await ledger.account_positions())["AAPL"] == at_broker.filled_qty
