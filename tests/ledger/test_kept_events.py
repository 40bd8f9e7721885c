"""An ``accepted`` that would leave an order as it is (the stream's echo of a recorded acknowledgement)
is answered from memory, without a transaction, and only when the write would have written nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.domain.orders import RESTORE, TRANSITIONS, Order, OrderEvent, OrderEventKind, OrderStatus
from autoquant.domain.values import Side
from autoquant.ledger import Ledger
from autoquant.ledger.ledger import ACCEPTED_KEEPS

E = OrderEventKind


@pytest.fixture
async def ledger(tmp_ledger_path: Path) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(tmp_ledger_path)
    yield opened
    await opened.close()


def event(kind: OrderEventKind, ts: int, **fields: object) -> OrderEvent:
    return OrderEvent.model_validate({"client_order_id": "aq-1", "kind": kind, "local_ts_ns": ts, **fields})


def history(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM journal ORDER BY seq").fetchall()


async def accepted_order(ledger: Ledger) -> None:
    order = Order(
        client_order_id="aq-1", strategy_id="s1", symbol="AAPL", side=Side.BUY, qty=Decimal(2), created_ns=1
    )
    assert await ledger.reserve(order)
    result = await ledger.apply_event(event(E.ACCEPTED, 2, broker_order_id="b-1"))
    assert result.changed and result.order is not None and result.order.status is OrderStatus.ACCEPTED


def test_no_event_leads_out_of_the_states_that_keep_an_accepted() -> None:
    """The argument for answering from memory: from a state that keeps ``accepted`` every event leads to
    another such state, so the disk (never behind the projection) keeps it too."""
    assert OrderStatus.ACCEPTED in ACCEPTED_KEEPS and OrderStatus.RESERVED not in ACCEPTED_KEEPS
    for (state, _), after in TRANSITIONS.items():
        if state in ACCEPTED_KEEPS:
            targets = {OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED} if after is RESTORE else {after}
            assert all(t in ACCEPTED_KEEPS for t in targets if isinstance(t, OrderStatus)), (state, after)


async def test_an_echoed_accepted_runs_no_transaction_and_adds_no_row(
    ledger: Ledger, tmp_ledger_path: Path
) -> None:
    """The echo answers unchanged with the order as recorded; no transaction runs, the history is as it
    was; an ``accepted`` that does change the order (a fill quantity) still goes through the writer."""
    await accepted_order(ledger)
    before, batches = history(tmp_ledger_path), ledger.write_batches
    result = await ledger.apply_update(event(E.ACCEPTED, 3, broker_order_id="b-1"), None)
    assert not result.changed and result.illegal is None and result.fill_recorded is None
    assert result.order == await ledger.get_order("aq-1")
    assert ledger.write_batches == batches
    assert history(tmp_ledger_path) == before
    moved = await ledger.apply_update(event(E.ACCEPTED, 4, broker_order_id="b-1", filled_qty="1"), None)
    assert moved.changed and ledger.write_batches == batches + 1
    assert moved.order is not None and moved.order.filled_qty == 1


async def test_an_accepted_behind_a_queued_write_goes_through_the_writer(
    ledger: Ledger, tmp_ledger_path: Path
) -> None:
    """With a write not yet answered the projection may be behind it: the ``accepted`` is then written
    as before, after it, and answers from the disk (here: the order filled by the write ahead of it)."""
    await accepted_order(ledger)
    batches = ledger.write_batches
    fill = ledger.apply_update(event(E.FILL, 3, filled_qty="2"), None)
    echo = ledger.apply_update(event(E.ACCEPTED, 4, broker_order_id="b-1"), None)
    filled, echoed = await asyncio.gather(fill, echo)
    assert filled.changed and not echoed.changed and echoed.illegal is None
    assert echoed.order is not None and echoed.order.status is OrderStatus.FILLED
    assert ledger.write_batches > batches


async def test_the_orders_kept_in_memory_are_the_ones_read_back_from_disk(ledger: Ledger) -> None:
    """The projection is fed the reservation and each transition as built in memory, not read back:
    it equals the disk's view at every step, with odd decimals, a reservation carrying fields a
    reservation does not store, and an event whose time is older than the order's latest."""
    order = Order(
        client_order_id="aq-1",
        strategy_id="s1",
        symbol="AAPL",
        side=Side.SELL,
        qty=Decimal("1.50"),
        order_type="limit",
        limit_price=Decimal("10.10"),
        created_ns=5,
        updated_ns=9,
        reason="not stored",
    )
    steps = [
        event(E.ACCEPTED, 7, broker_order_id="b-1", reason="ok"),
        event(E.PARTIAL_FILL, 6, filled_qty="0.50"),
        event(E.CANCEL_REQUESTED, 0, reason="operator"),
        event(E.CANCEL_REJECTED, 8, reason="too late"),
    ]
    assert await ledger.reserve(order)
    for step in [None, *steps]:
        if step is not None:
            assert (await ledger.apply_event(step)).changed
        memory = (await ledger.projection_snapshot()).open_orders
        assert memory == (await ledger.projection()).open_orders
    assert memory["aq-1"].status is OrderStatus.PARTIALLY_FILLED
