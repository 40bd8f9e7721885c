"""The execution worker against the real in-process paper exchange and the real ledger."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.brokers.paper import PaperBroker, PaperExchange
from autoquant.clocks import FakeClock
from autoquant.domain.broker import BrokerOrderState, OrderRequest, OrderUpdate
from autoquant.domain.orders import Order, OrderStatus
from autoquant.domain.values import Side
from autoquant.errors import BrokerAmbiguous, BrokerTransient
from autoquant.ledger import Ledger
from autoquant.ledger.records import RiskEvent
from autoquant.runtime.config import PaperSettings
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.incidents import IncidentReporter
from autoquant.workers.order_stream import OrderStream
from tests.ledger_sql import ledger_query


class DropAfterAccept(PaperBroker):
    """A broker whose submit reaches the exchange but whose answer is lost (a fake, not a mock)."""

    drops = 1

    async def submit(self, request: OrderRequest) -> BrokerOrderState:
        state = await super().submit(request)
        if self.drops > 0:
            self.drops -= 1
            raise BrokerAmbiguous("connection dropped after the order was sent")
        return state


class RefuseBeforeSend(PaperBroker):
    """A broker that answers 429 to the first submit without taking the order."""

    refusals = 1

    async def submit(self, request: OrderRequest) -> BrokerOrderState:
        if self.refusals > 0:
            self.refusals -= 1
            raise BrokerTransient("rate limited", status=429)
        return await super().submit(request)


@dataclass
class Rig:
    ledger: Ledger
    exchange: PaperExchange
    broker: PaperBroker
    worker: ExecutionWorker
    clock: FakeClock
    updates: asyncio.Queue[OrderUpdate]
    stream: OrderStream

    async def deliver(self) -> list[OrderUpdate]:
        """Hand every update the exchange emitted so far to the worker."""
        delivered = []
        while not self.updates.empty():
            update = self.updates.get_nowait()
            await self.stream.handle_update(update)
            delivered.append(update)
        return delivered

    async def settle(self, seconds: float = 1.0) -> None:
        self.clock.advance(seconds)
        self.exchange.process()
        await self.deliver()


async def reserve(ledger: Ledger, coid: str = "aq-1", qty: str = "10", side: Side = Side.BUY) -> Order:
    order = Order(
        client_order_id=coid, strategy_id="s1", symbol="AAPL", side=side, qty=Decimal(qty), created_ns=1
    )
    assert await ledger.reserve(order)
    return order


@pytest.fixture
async def make(tmp_path: Path, clock: FakeClock) -> AsyncIterator[object]:
    made: list[Rig] = []

    async def factory(broker_class: type[PaperBroker] = PaperBroker, **worker_args: object) -> Rig:
        settings = PaperSettings(
            state_path=tmp_path / "paper.db",
            latency_s=0.01,
            partial_fill_probability=0.0,
            slippage_bps=Decimal(0),
        )
        exchange = PaperExchange(settings, clock, ["AAPL"])
        exchange.set_price("AAPL", Decimal("100"))
        broker = broker_class(exchange)
        ledger = await Ledger.open(tmp_path / "ledger.db")
        incidents = IncidentReporter(ledger, clock)
        worker = ExecutionWorker(
            ledger,
            broker,
            clock,
            resubmit_grace_s=2.0,
            incidents=incidents,
            **worker_args,  # type: ignore[arg-type]
        )
        stream = OrderStream(ledger, broker, clock, incidents)
        rig = Rig(ledger, exchange, broker, worker, clock, exchange.subscribe(), stream)
        made.append(rig)
        return rig

    yield factory
    for rig in made:
        await rig.ledger.close()
        rig.exchange.close()


async def test_fresh_reservation_is_submitted_accepted_and_filled(make) -> None:  # type: ignore[no-untyped-def]
    """A reservation is sent once, acknowledged with the broker's id, and its fill lands in the ledger."""
    rig = await make()
    order = await reserve(rig.ledger)
    rig.worker.submit_soon(order.client_order_id)
    accepted = await rig.worker.process(order)
    assert accepted is not None and accepted.status is OrderStatus.ACCEPTED and accepted.broker_order_id
    await rig.settle()
    final = await rig.ledger.get_order(order.client_order_id)
    assert final is not None and final.status is OrderStatus.FILLED and final.filled_qty == 10
    assert (await rig.ledger.account_positions())["AAPL"] == 10
    assert len(rig.exchange.list_orders(status="all")) == 1


async def test_reserved_order_from_a_previous_run_is_looked_up_not_resent(make) -> None:  # type: ignore[no-untyped-def]
    """After a crash between submit and acknowledgement, start-up adopts the broker's order."""
    rig = await make()
    order = await reserve(rig.ledger)
    rig.exchange.submit(
        OrderRequest(client_order_id=order.client_order_id, symbol="AAPL", side=Side.BUY, qty=Decimal(10))
    )
    rig.clock.advance(1)
    rig.exchange.process()
    unresolved = await rig.worker.resolve_pending()
    assert unresolved == []
    adopted = await rig.ledger.get_order(order.client_order_id)
    assert adopted is not None and adopted.status is OrderStatus.FILLED
    assert (await rig.ledger.account_positions())["AAPL"] == 10, "the fills were fetched on adoption"
    assert len(rig.exchange.list_orders(status="all")) == 1


async def test_reserved_order_unknown_to_the_broker_is_sent_after_the_grace(make) -> None:  # type: ignore[no-untyped-def]
    """A reservation the broker never saw waits out the grace period, then goes out once with its id."""
    rig = await make()
    order = Order(
        client_order_id="aq-1",
        strategy_id="s1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(1),
        created_ns=rig.clock.now_ns(),
    )
    await rig.ledger.reserve(order)
    await rig.worker.resolve_pending()
    assert rig.exchange.list_orders(status="all") == [], "within the grace period nothing is sent"
    rig.clock.advance(3)
    await rig.worker.resolve_pending()
    await rig.worker.resolve_pending()
    orders = rig.exchange.list_orders(status="all")
    assert [o.client_order_id for o in orders] == [order.client_order_id]


async def test_dropped_response_becomes_unknown_then_resolves_to_one_order(make) -> None:  # type: ignore[no-untyped-def]
    """A submit whose answer is lost is UNKNOWN, then adopted by lookup: one order at the exchange."""
    rig = await make(DropAfterAccept)
    order = await reserve(rig.ledger)
    rig.worker.submit_soon(order.client_order_id)
    after = await rig.worker.process(order)
    assert after is not None and after.status is OrderStatus.UNKNOWN
    await rig.worker.resolve_pending()
    await rig.settle()
    final = await rig.ledger.get_order(order.client_order_id)
    assert final is not None and final.status is OrderStatus.FILLED
    assert len(rig.exchange.list_orders(status="all")) == 1
    assert rig.worker.stats.unknown == 1 and rig.worker.stats.adopted >= 1


async def test_rate_limited_submit_stays_reserved_and_is_retried(make) -> None:  # type: ignore[no-untyped-def]
    """A 429 before acceptance leaves the order RESERVED; the next pass sends it exactly once."""
    rig = await make(RefuseBeforeSend)
    order = await reserve(rig.ledger)
    rig.worker.submit_soon(order.client_order_id)
    after = await rig.worker.process(order)
    assert after is not None and after.status is OrderStatus.RESERVED
    await rig.worker.process(after)
    assert len(rig.exchange.list_orders(status="all")) == 1
    final = await rig.ledger.get_order(order.client_order_id)
    assert final is not None and final.status is OrderStatus.ACCEPTED


async def test_duplicate_client_order_id_is_adopted(make) -> None:  # type: ignore[no-untyped-def]
    """The broker's "duplicate client_order_id" means we sent it before: the order is adopted."""
    rig = await make()
    order = await reserve(rig.ledger)
    rig.exchange.submit(
        OrderRequest(client_order_id=order.client_order_id, symbol="AAPL", side=Side.BUY, qty=Decimal(10))
    )
    rig.worker.submit_soon(order.client_order_id)  # this process believes it never sent it
    after = await rig.worker.process(order)
    assert after is not None and after.status is OrderStatus.ACCEPTED
    assert len(rig.exchange.list_orders(status="all")) == 1


async def test_refusal_is_rejected_with_the_brokers_reason(make) -> None:  # type: ignore[no-untyped-def]
    """An order the broker refuses (no buying power) is REJECTED with the broker's message."""
    rig = await make()
    order = await reserve(rig.ledger, qty="100000")
    rig.worker.submit_soon(order.client_order_id)
    after = await rig.worker.process(order)
    assert after is not None and after.status is OrderStatus.REJECTED
    assert after.reason is not None and "buying power" in after.reason


async def test_denied_by_the_pre_submit_check_is_never_sent(make) -> None:  # type: ignore[no-untyped-def]
    """The risk hook runs right before sending; a refusal makes the order DENIED and the exchange empty."""

    async def deny(order: Order) -> RiskEvent:
        return RiskEvent(
            decision_id=None,
            client_order_id=order.client_order_id,
            strategy_id=order.strategy_id,
            symbol=order.symbol,
            stage="submit",
            allowed=False,
            reason="halted",
            checks=[],
            local_ts_ns=1,
        )

    rig = await make(pre_submit=deny)
    order = await reserve(rig.ledger)
    rig.worker.submit_soon(order.client_order_id)
    after = await rig.worker.process(order)
    assert after is not None and after.status is OrderStatus.DENIED
    assert rig.exchange.list_orders(status="all") == []
    assert await ledger_query(rig.ledger, "SELECT allowed, reason FROM risk_events") == [(0, "halted")]


async def test_duplicated_and_reordered_updates_count_each_fill_once(make) -> None:  # type: ignore[no-untyped-def]
    """Every update delivered twice and in reverse order still yields one fill per execution."""
    rig = await make()
    order = await reserve(rig.ledger)
    rig.worker.submit_soon(order.client_order_id)
    await rig.worker.process(order)
    rig.clock.advance(1)
    rig.exchange.process()
    updates = []
    while not rig.updates.empty():
        updates.append(rig.updates.get_nowait())
    for update in [*reversed(updates), *updates]:
        await rig.stream.handle_update(update)
    assert (await rig.ledger.account_positions())["AAPL"] == 10
    assert len(await rig.ledger.fills_for_order(order.client_order_id)) == 1
    assert rig.stream.stats.duplicate_fills >= 1


async def test_cancel_of_a_working_order(make) -> None:  # type: ignore[no-untyped-def]
    """Cancelling a working order ends it CANCELED at the broker and in the ledger."""
    rig = await make()
    order = await reserve(rig.ledger)
    rig.worker.submit_soon(order.client_order_id)
    await rig.worker.process(order)  # accepted; not yet filled (latency)
    await rig.worker.cancel(order.client_order_id)
    await rig.deliver()
    final = await rig.ledger.get_order(order.client_order_id)
    assert final is not None and final.status is OrderStatus.CANCELED
    assert rig.exchange.list_orders(status="open") == []


async def test_cancel_of_an_order_never_sent_withdraws_it(make) -> None:  # type: ignore[no-untyped-def]
    """A reservation the broker never saw is withdrawn locally and never sent afterwards."""
    rig = await make()
    order = await reserve(rig.ledger)
    await rig.worker.cancel(order.client_order_id)
    await rig.worker.resolve_pending()
    final = await rig.ledger.get_order(order.client_order_id)
    assert final is not None and final.status is OrderStatus.CANCELED
    assert rig.exchange.list_orders(status="all") == []


async def test_update_for_an_order_the_ledger_never_reserved_opens_an_incident(make) -> None:  # type: ignore[no-untyped-def]
    """An update for a foreign order is reported as an incident and changes nothing."""
    rig = await make()
    rig.exchange.submit(OrderRequest(client_order_id="foreign", symbol="AAPL", side=Side.BUY, qty=Decimal(1)))
    await rig.deliver()
    assert [i.kind for i in await rig.ledger.incidents(open_only=True)] == ["unknown_order"]
    assert await rig.ledger.open_orders() == []


class FailBeforeAccept(PaperBroker):
    """A broker whose first submit fails ambiguously without the order ever reaching the exchange."""

    failures = 1

    async def submit(self, request: OrderRequest) -> BrokerOrderState:
        if self.failures > 0:
            self.failures -= 1
            raise BrokerAmbiguous("503 service unavailable")
        return await super().submit(request)


async def test_unknown_order_whose_resend_is_denied_ends_denied(make) -> None:  # type: ignore[no-untyped-def]
    """UNKNOWN, not found after the grace, re-send refused by the gate: DENIED, no incident, nothing sent."""
    verdicts = iter([True, False])

    async def gate(order: Order) -> RiskEvent:
        allowed = next(verdicts)
        return RiskEvent(
            decision_id=None,
            client_order_id=order.client_order_id,
            strategy_id=order.strategy_id,
            symbol=order.symbol,
            stage="submit",
            allowed=allowed,
            reason=None if allowed else "data_freshness: no market data",
            checks=[],
            local_ts_ns=1,
        )

    rig = await make(FailBeforeAccept, pre_submit=gate)
    order = await reserve(rig.ledger)
    rig.worker.submit_soon(order.client_order_id)
    after = await rig.worker.process(order)
    assert after is not None and after.status is OrderStatus.UNKNOWN
    rig.clock.advance(3)
    await rig.worker.resolve_pending()
    final = await rig.ledger.get_order(order.client_order_id)
    assert final is not None and final.status is OrderStatus.DENIED
    assert await rig.ledger.incidents() == []
    assert rig.exchange.list_orders(status="all") == []


class CancelFailsOnce(PaperBroker):
    """A broker whose first cancel call fails transiently (a 503 on DELETE)."""

    failures = 1

    async def cancel(self, broker_order_id: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise BrokerTransient("503 service unavailable", status=503)
        await super().cancel(broker_order_id)


async def test_a_cancel_request_that_fails_transiently_stays_pending_and_is_retried(make) -> None:  # type: ignore[no-untyped-def]
    """An operator cancel hit by a transient broker error neither crashes the sweep nor is lost."""
    rig = await make(CancelFailsOnce)
    order = await reserve(rig.ledger)
    rig.worker.submit_soon(order.client_order_id)
    accepted = await rig.worker.process(order)
    assert accepted is not None and accepted.status is OrderStatus.ACCEPTED
    await rig.ledger.request_cancel(order.client_order_id, "operator", "op", 1)
    assert await rig.worker.carry_out_cancels() == 0, "deferred, not carried out"
    assert [r.target for r in await rig.ledger.pending_cancel_requests()] == [order.client_order_id]
    assert await rig.worker.carry_out_cancels() == 1
    assert await rig.ledger.pending_cancel_requests() == []
    at_venue = rig.exchange.get_by_client_order_id(order.client_order_id)
    assert at_venue is not None and at_venue.status is OrderStatus.CANCELED


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    """Turn the loop until ``condition`` holds, or fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not before the deadline: {what}")
        await asyncio.sleep(0)


async def test_the_update_stream_beats_once_as_its_subscription_ends(make) -> None:  # type: ignore[no-untyped-def]
    """A quiet stream beats no heartbeat while it waits (the supervisor counts it alive then); the moment
    its subscription ends it beats once, so its last heartbeat is when it was last known alive."""
    rig = await make()
    beats: list[int] = []
    incidents = IncidentReporter(rig.ledger, rig.clock)
    stream = OrderStream(
        rig.ledger, rig.broker, rig.clock, incidents, heartbeat=lambda: beats.append(rig.clock.now_ns())
    )
    task = asyncio.create_task(stream.run())
    try:
        await _until(lambda: stream.listening, "the stream listening")
        rig.clock.advance(3600)  # an hour without an update
        for _ in range(10):
            await asyncio.sleep(0)
        assert stream.listening and len(beats) == 1  # only the start's
        await rig.broker.close()  # the subscription ends
        await _until(lambda: not stream.listening, "the subscription's end")
        assert len(beats) == 2 and beats[-1] == rig.clock.now_ns()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
