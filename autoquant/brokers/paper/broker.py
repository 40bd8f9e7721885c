"""``PaperBroker``: the ``Broker`` port over an in-process ``PaperExchange``.

The exchange is synchronous; this adapter makes it async and adds the pump: ``run()`` is a task the
owner starts (in its TaskGroup) that calls ``process()`` whenever ``next_due_ns()`` comes due, so
fills arrive with the configured latency without anyone polling. Submits, cancels and new prices
wake it early. ``updates()`` subscribes when called (not at the first ``__anext__``), so nothing that
happens after the call is missed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

from autoquant.brokers.paper.closing import close_all
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.brokers.paper.order_rules import venue_time_in_force
from autoquant.domain.broker import (
    BrokerAccount,
    BrokerOrderState,
    BrokerPosition,
    FlattenResult,
    OrderRequest,
    OrderUpdate,
)
from autoquant.domain.fills import Fill


class UpdateSubscription:
    """An async iterator over the exchange's updates from its creation until ``aclose()``."""

    def __init__(self, exchange: PaperExchange, closed: asyncio.Event) -> None:
        self._exchange = exchange
        self._queue = exchange.subscribe()
        self._broker_closed = closed
        self._closed = False
        self._held: deque[OrderUpdate] = deque()

    def __aiter__(self) -> UpdateSubscription:
        return self

    async def __anext__(self) -> OrderUpdate:
        if self._closed:
            raise StopAsyncIteration
        if self._held:
            return self._held.popleft()
        if not self._queue.empty():
            return self._queue.get_nowait()
        if self._broker_closed.is_set():
            await self.aclose()
            raise StopAsyncIteration
        getter = asyncio.ensure_future(self._queue.get())
        closer = asyncio.ensure_future(self._broker_closed.wait())
        try:
            await asyncio.wait({getter, closer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closer.cancel()
            getter.cancel()
            if getter.done() and not getter.cancelled():
                # Taken off the queue but not yet returned (we may be cancelled): it goes first.
                self._held.append(getter.result())
        if self._held:
            return self._held.popleft()
        await self.aclose()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._exchange.unsubscribe(self._queue)

    async def __aenter__(self) -> UpdateSubscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class PaperBroker:
    """The ``Broker`` protocol over a ``PaperExchange`` in the same process."""

    def __init__(self, exchange: PaperExchange) -> None:
        self.exchange = exchange
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        exchange.add_watcher(self._wake.set)

    async def submit(self, request: OrderRequest) -> BrokerOrderState:
        """Submit, with the venue's time in force for crypto (day becomes gtc), as ``AlpacaBroker`` does."""
        tif = venue_time_in_force(request.symbol, request.time_in_force)
        if tif is not request.time_in_force:
            request = request.model_copy(update={"time_in_force": tif})
        return self.exchange.submit(request)

    async def get_by_client_order_id(self, client_order_id: str) -> BrokerOrderState | None:
        found = self.exchange.get_by_client_order_id(client_order_id)
        return None if found is None else self._linked([found])[0]

    async def list_orders(
        self, *, open_only: bool = True, since_ns: int | None = None
    ) -> list[BrokerOrderState]:
        """Open orders (oldest first), or every order created at or after ``since_ns``."""
        after = None if since_ns is None else since_ns - 1
        return self._linked(
            self.exchange.list_orders(status="open" if open_only else "all", after_ns=after, direction="asc")
        )

    async def cancel(self, broker_order_id: str) -> None:
        self.exchange.cancel(broker_order_id)

    async def replace(self, broker_order_id: str, request: OrderRequest) -> BrokerOrderState:
        return self._linked([self.exchange.replace(broker_order_id, request)])[0]

    async def close_all_positions(self, *, cancel_orders: bool = True) -> FlattenResult:
        return close_all(self.exchange, cancel_orders=cancel_orders)

    def _linked(self, orders: list[BrokerOrderState]) -> list[BrokerOrderState]:
        """The orders with their replace links (``replaces``/``replaced_by``), as Alpaca reports them."""
        links = self.exchange.links([o.broker_order_id for o in orders])
        return [
            o
            if (found := links.get(o.broker_order_id)) is None
            else o.model_copy(update={"replaces": found.replaces, "replaced_by": found.replaced_by})
            for o in orders
        ]

    async def positions(self) -> list[BrokerPosition]:
        return self.exchange.positions()

    async def account(self) -> BrokerAccount:
        return self.exchange.account()

    async def fills(self, *, since_ns: int | None = None) -> list[Fill]:
        return self.exchange.fills(after_ns=None if since_ns is None else since_ns - 1)

    def updates(self) -> UpdateSubscription:
        return UpdateSubscription(self.exchange, self._closed)

    def poke(self) -> None:
        """Wake the pump now (after moving a fake clock, say)."""
        self._wake.set()

    async def run(self) -> None:
        """Pump ``process()`` at ``next_due_ns()`` until ``close()`` or cancellation."""
        clock = self.exchange.clock
        while not self._closed.is_set():
            self._wake.clear()
            self.exchange.process()
            due = self.exchange.next_due_ns()
            timeout = None if due is None else max(0.0, (due - clock.now_ns()) / 1e9)
            if timeout == 0.0:
                await asyncio.sleep(0)  # due now: yield once, then process again
                continue
            try:
                async with asyncio.timeout(timeout):
                    await self._wait_wake_or_close()
            except TimeoutError:
                pass

    async def _wait_wake_or_close(self) -> None:
        waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self._closed.wait())}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def close(self) -> None:
        """Stop the pump and end every update iterator; the exchange is closed by its owner."""
        self._closed.set()
        self.exchange.remove_watcher(self._wake.set)
