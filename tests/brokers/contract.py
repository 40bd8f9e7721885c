"""The broker contract: one suite of behaviours every ``Broker`` implementation must show.

It runs against the in-process paper broker (``test_paper_contract.py``) and is meant to run unchanged
against any other implementation, e.g. the Alpaca adapter talking to the paper server.

How to plug another implementation in: subclass ``BrokerContract`` in a ``test_*.py`` module and give
it an async ``harness`` fixture that builds a fresh venue per test and yields a ``BrokerHarness``::

    from tests.brokers.contract import BrokerContract, BrokerHarness

    class TestMyBrokerContract(BrokerContract):
        @pytest.fixture
        async def harness(self, tmp_path: Path) -> AsyncIterator[BrokerHarness]:
            venue = ...                     # fresh state in tmp_path; a tradable "AAPL"
            broker = ...                    # the Broker under test
            async def set_price(symbol: str, price: Decimal) -> None:
                ...                         # make ``price`` the venue's current price for ``symbol``
            yield BrokerHarness(broker=broker, set_price=set_price, starting_cash=Decimal(100_000))
            await broker.close()
            ...                             # stop the venue

What the harness promises: a fresh account holding only ``starting_cash``; ``symbol`` tradable and
``unknown_symbol`` not; the venue fills on its own as (its) time passes (``advance`` is awaited in
every wait loop, for venues that need to be pushed); ``stream_ready`` returns once an update
iterator just created will see every later event (e.g. after a websocket has connected and
subscribed). The venue's clock is the system clock: the suite passes ``since_ns`` values taken from
``time.time_ns()``. Fills may be partial: the suite waits for the final ``FILL`` and sums executions.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from autoquant.brokers.port import Broker
from autoquant.domain.broker import BrokerOrderState, OrderRequest, OrderUpdate
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce
from autoquant.errors import BrokerNotFound, BrokerRejected, DuplicateClientOrderId

D = Decimal


async def _nothing() -> None:
    return None


@dataclass
class BrokerHarness:
    """A broker under test and the handles the suite needs on its venue."""

    broker: Broker
    set_price: Callable[[str, Decimal], Awaitable[None]]
    starting_cash: Decimal
    symbol: str = "AAPL"
    unknown_symbol: str = "ZZZZ"
    #: Awaited after an update iterator is created, until it is live.
    stream_ready: Callable[[], Awaitable[None]] = field(default=_nothing)
    #: Awaited in every wait loop: lets a venue that does not run by itself make progress.
    advance: Callable[[], Awaitable[None]] = field(default=_nothing)
    #: How long any one expected outcome may take.
    timeout_s: float = 10.0

    async def wait_until(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not await check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {self.timeout_s}s waiting for {what}")
            await self.advance()
            await asyncio.sleep(0.01)


class UpdateRecorder:
    """Collects a broker's update stream in the background so tests can wait on what arrived."""

    def __init__(self, harness: BrokerHarness, iterator: AsyncIterator[OrderUpdate]) -> None:
        self.harness = harness
        self.updates: list[OrderUpdate] = []
        self._iterator = iterator
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for update in self._iterator:
            self.updates.append(update)

    def for_order(self, client_order_id: str) -> list[OrderUpdate]:
        return [u for u in self.updates if u.order.client_order_id == client_order_id]

    async def wait_for(self, client_order_id: str, kind: OrderEventKind) -> list[OrderUpdate]:
        """Every update of the order, once one of ``kind`` has arrived."""

        async def arrived() -> bool:
            if self._task.done():
                self._task.result()  # surface a crashed stream
                raise AssertionError("the update stream ended")
            return any(u.kind is kind for u in self.for_order(client_order_id))

        await self.harness.wait_until(arrived, f"{kind.value} for {client_order_id}")
        return self.for_order(client_order_id)

    async def close(self) -> None:
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()


@asynccontextmanager
async def recording(harness: BrokerHarness) -> AsyncIterator[UpdateRecorder]:
    recorder = UpdateRecorder(harness, harness.broker.updates())
    try:
        await harness.stream_ready()
        yield recorder
    finally:
        await recorder.close()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def market(symbol: str, coid: str, qty: str, side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest(client_order_id=coid, symbol=symbol, side=side, qty=D(qty))


def limit(symbol: str, coid: str, qty: str, price: str, side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest(
        client_order_id=coid,
        symbol=symbol,
        side=side,
        qty=D(qty),
        order_type=OrderType.LIMIT,
        limit_price=D(price),
        time_in_force=TimeInForce.GTC,
    )


async def filled(
    harness: BrokerHarness, recorder: UpdateRecorder, request: OrderRequest
) -> list[OrderUpdate]:
    """Submit and wait for the final fill; the order's updates so far."""
    await harness.broker.submit(request)
    return await recorder.wait_for(request.client_order_id, OrderEventKind.FILL)


class BrokerContract:
    """The behaviours; subclasses provide the ``harness`` fixture (see the module docstring)."""

    async def test_submit_returns_an_accepted_order_with_a_broker_id(self, harness: BrokerHarness) -> None:
        """A submitted order comes back accepted (not yet filled) with a broker order id."""
        request = limit(harness.symbol, new_id("acc"), "1", "1")
        state = await harness.broker.submit(request)
        assert state.broker_order_id
        assert state.client_order_id == request.client_order_id
        assert state.status is OrderStatus.ACCEPTED
        assert (state.symbol, state.side, state.qty, state.limit_price) == (
            request.symbol,
            Side.BUY,
            D(1),
            D(1),
        )
        assert state.filled_qty == 0

    async def test_lookup_by_client_order_id(self, harness: BrokerHarness) -> None:
        """get_by_client_order_id finds a submitted order and returns None for an unknown id."""
        request = limit(harness.symbol, new_id("get"), "1", "1")
        state = await harness.broker.submit(request)
        found = await harness.broker.get_by_client_order_id(request.client_order_id)
        assert found is not None
        assert found.broker_order_id == state.broker_order_id
        assert await harness.broker.get_by_client_order_id(new_id("nobody")) is None

    async def test_duplicate_client_order_id_is_refused(self, harness: BrokerHarness) -> None:
        """A second submit with a known client order id raises DuplicateClientOrderId."""
        request = limit(harness.symbol, new_id("dup"), "1", "1")
        first = await harness.broker.submit(request)
        with pytest.raises(DuplicateClientOrderId):
            await harness.broker.submit(request)
        open_orders = await harness.broker.list_orders(open_only=True)
        assert [o.broker_order_id for o in open_orders] == [first.broker_order_id]

    async def test_market_order_fills_with_accepted_then_fill_updates(self, harness: BrokerHarness) -> None:
        """A market order fills at the venue's price; the stream has ACCEPTED, then fills ending in FILL."""
        await harness.set_price(harness.symbol, D(100))
        async with recording(harness) as recorder:
            request = market(harness.symbol, new_id("mkt"), "10")
            updates = await filled(harness, recorder, request)
        kinds = [u.kind for u in updates]
        assert kinds[0] is OrderEventKind.ACCEPTED
        assert kinds[-1] is OrderEventKind.FILL
        assert set(kinds[1:-1]) <= {OrderEventKind.PARTIAL_FILL}
        fills = [u.fill for u in updates if u.fill is not None]
        assert len(fills) == len(kinds) - 1
        assert len({f.execution_id for f in fills}) == len(fills)
        assert sum(f.qty for f in fills) == D(10)
        assert updates[-1].order.status is OrderStatus.FILLED
        assert updates[-1].order.filled_qty == D(10)
        assert all(D(99) <= f.price <= D(101) for f in fills)

    async def test_open_orders_list_working_but_not_filled_orders(self, harness: BrokerHarness) -> None:
        """list_orders(open_only) shows a working limit order and not a filled one; all orders show both."""
        since = time.time_ns() - 1_000_000_000
        await harness.set_price(harness.symbol, D(100))
        async with recording(harness) as recorder:
            done = market(harness.symbol, new_id("done"), "1")
            await filled(harness, recorder, done)
            working = await harness.broker.submit(limit(harness.symbol, new_id("work"), "1", "50"))
        open_ids = [o.client_order_id for o in await harness.broker.list_orders(open_only=True)]
        assert open_ids == [working.client_order_id]
        every = {
            o.client_order_id: o for o in await harness.broker.list_orders(open_only=False, since_ns=since)
        }
        assert set(every) == {done.client_order_id, working.client_order_id}
        assert every[done.client_order_id].status is OrderStatus.FILLED

    async def test_cancel_of_a_working_order_emits_canceled(self, harness: BrokerHarness) -> None:
        """Cancelling a working limit order ends it: a CANCELED update, and it is no longer open."""
        await harness.set_price(harness.symbol, D(100))
        async with recording(harness) as recorder:
            state = await harness.broker.submit(limit(harness.symbol, new_id("cxl"), "1", "50"))
            await harness.broker.cancel(state.broker_order_id)
            updates = await recorder.wait_for(state.client_order_id, OrderEventKind.CANCELED)
        assert updates[-1].order.status is OrderStatus.CANCELED
        assert await harness.broker.list_orders(open_only=True) == []
        after = await harness.broker.get_by_client_order_id(state.client_order_id)
        assert after is not None
        assert after.status is OrderStatus.CANCELED

    async def test_cancel_of_an_unknown_order_raises_not_found(self, harness: BrokerHarness) -> None:
        """Cancelling an order id the broker never issued raises BrokerNotFound."""
        with pytest.raises(BrokerNotFound):
            await harness.broker.cancel(str(uuid.uuid4()))

    async def test_positions_and_account_reflect_fills_exactly(self, harness: BrokerHarness) -> None:
        """After buys and a sell, position qty and cash equal the exact sums over the executions."""
        await harness.set_price(harness.symbol, D("100.25"))
        async with recording(harness) as recorder:
            updates = await filled(harness, recorder, market(harness.symbol, new_id("b1"), "7"))
            updates += await filled(harness, recorder, market(harness.symbol, new_id("b2"), "3"))
            await harness.set_price(harness.symbol, D("101.5"))
            updates += await filled(harness, recorder, market(harness.symbol, new_id("s1"), "4", Side.SELL))
        fills = [u.fill for u in updates if u.fill is not None]
        cash = harness.starting_cash
        for f in fills:
            cash += -f.qty * f.price - f.fee if f.side is Side.BUY else f.qty * f.price - f.fee
        account = await harness.broker.account()
        assert account.cash == cash
        (position,) = await harness.broker.positions()
        assert (position.symbol, position.qty) == (harness.symbol, D(6))
        bought = [f for f in fills if f.side is Side.BUY]
        average = sum((f.qty * f.price for f in bought), D(0)) / sum((f.qty for f in bought), D(0))
        assert abs(position.avg_entry_price - average) < D("0.0001")

    async def test_fills_since_returns_each_execution_once(self, harness: BrokerHarness) -> None:
        """fills(since) lists every execution exactly once, with the stream's execution ids."""
        since = time.time_ns() - 1_000_000_000
        await harness.set_price(harness.symbol, D(100))
        async with recording(harness) as recorder:
            updates = await filled(harness, recorder, market(harness.symbol, new_id("f1"), "5"))
            updates += await filled(harness, recorder, market(harness.symbol, new_id("f2"), "5"))
        streamed = {u.fill.execution_id for u in updates if u.fill is not None}
        listed = [f.execution_id for f in await harness.broker.fills(since_ns=since)]
        assert sorted(listed) == sorted(streamed)
        assert [f.execution_id for f in await harness.broker.fills()] == listed

    async def test_insufficient_buying_power_is_refused_with_403(self, harness: BrokerHarness) -> None:
        """A buy costing more than the cash is refused at submit with status 403 and never exists."""
        await harness.set_price(harness.symbol, D(100))
        qty = str(int(harness.starting_cash / 100) * 2)
        request = market(harness.symbol, new_id("big"), qty)
        with pytest.raises(BrokerRejected) as refused:
            await harness.broker.submit(request)
        assert refused.value.status == 403
        assert not isinstance(refused.value, DuplicateClientOrderId)
        assert await harness.broker.get_by_client_order_id(request.client_order_id) is None

    async def test_an_unknown_symbol_is_rejected(self, harness: BrokerHarness) -> None:
        """An order for a symbol the venue does not trade is refused with BrokerRejected."""
        request = market(harness.unknown_symbol, new_id("sym"), "1")
        with pytest.raises(BrokerRejected) as refused:
            await harness.broker.submit(request)
        assert not isinstance(refused.value, DuplicateClientOrderId)
        assert refused.value.status is not None
        assert 400 <= refused.value.status < 500


__all__ = ["BrokerContract", "BrokerHarness", "BrokerOrderState", "UpdateRecorder", "recording"]
