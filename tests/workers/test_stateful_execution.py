"""A stateful property test of the order path: the real ledger and execution worker against the real
in-process paper exchange, with lost responses, 429s, duplicated/reordered/lost stream updates,
cancels and restarts in any order.

After every step: at most one exchange order per client order id, each of them reserved in the
ledger; no fill counted twice; nothing filled past its quantity. After a settle (resolve, deliver
everything, reconcile): the ledger's fills are the exchange's fills, and the positions agree.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from autoquant.brokers.paper import PaperBroker, PaperExchange
from autoquant.clocks import FakeClock
from autoquant.domain.broker import BrokerOrderState, OrderRequest, OrderUpdate
from autoquant.domain.orders import Order, OrderStatus
from autoquant.domain.values import OrderType, Side
from autoquant.errors import BrokerAmbiguous, BrokerTransient
from autoquant.ledger import Ledger
from autoquant.runtime.config import PaperSettings
from autoquant.workers.broker_requests import BrokerRequests
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.incidents import IncidentReporter
from autoquant.workers.order_stream import OrderStream
from autoquant.workers.reconciliation import Reconciler
from tests.ledger_sql import ledger_query

T = TypeVar("T")
D = Decimal
PRICES = {"AAPL": D(100), "MSFT": D(50)}
STRATEGIES = {"AAPL": {"s-aapl"}, "MSFT": {"s-msft"}}


class FlakyBroker(PaperBroker):
    """The paper broker, but the next submit may lose its answer after the exchange took the order
    ("drop") or be refused with 429 before anything is sent ("refuse")."""

    mode = "ok"

    async def submit(self, request: OrderRequest) -> BrokerOrderState:
        mode, self.mode = self.mode, "ok"
        if mode == "refuse":
            raise BrokerTransient("rate limited", status=429)
        state = await super().submit(request)
        if mode == "drop":
            raise BrokerAmbiguous("connection dropped after the order was sent")
        return state

    async def replace(self, broker_order_id: str, request: OrderRequest) -> BrokerOrderState:
        mode, self.mode = self.mode, "ok"
        if mode == "refuse":
            raise BrokerTransient("rate limited", status=429)
        state = await super().replace(broker_order_id, request)
        if mode == "drop":
            raise BrokerAmbiguous("connection dropped after the replace was sent")
        return state


class OrderPathMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        root = Path(self.tmp.name)
        self.runner = asyncio.Runner()
        self.clock = FakeClock()
        paper = PaperSettings(
            state_path=root / "paper.db",
            latency_s=0.5,
            partial_fill_probability=0.5,
            slippage_bps=D(0),
            starting_cash=D(100_000),
        )
        self.exchange = PaperExchange(paper, self.clock, sorted(PRICES))
        for symbol, price in PRICES.items():
            self.exchange.set_price(symbol, price)
        self.broker = FlakyBroker(self.exchange)
        self.ledger_path = root / "ledger.db"
        self.ledger, self.worker = self.run(self._open())
        self.updates = self.exchange.subscribe()
        self.pending: list[OrderUpdate] = []
        self.counter = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    async def _open(self) -> tuple[Ledger, ExecutionWorker]:
        ledger = await Ledger.open(self.ledger_path)
        self.stream = OrderStream(ledger, self.broker, self.clock, IncidentReporter(ledger, self.clock))
        return ledger, ExecutionWorker(ledger, self.broker, self.clock, resubmit_grace_s=2.0)

    def collect(self) -> None:
        while not self.updates.empty():
            self.pending.append(self.updates.get_nowait())

    async def reconcile(self) -> None:
        outcome = await Reconciler(self.ledger, self.broker, self.clock, STRATEGIES).run("periodic")
        if outcome.fills_appended:
            event("reconciliation appended missed fills")

    # -- rules ---------------------------------------------------------------------------------

    @rule(
        symbol=st.sampled_from(sorted(PRICES)),
        side=st.sampled_from([Side.BUY, Side.BUY, Side.SELL]),
        qty=st.integers(1, 40),
        mode=st.sampled_from(["ok", "ok", "drop", "refuse"]),
    )
    def reserve_and_submit(self, symbol: str, side: Side, qty: int, mode: str) -> None:
        price = PRICES[symbol]
        if side is Side.BUY:
            room = int(self.exchange.account().buying_power // price)
        else:
            open_sells = sum(
                (
                    o.qty - o.filled_qty
                    for o in self.exchange.list_orders(status="open")
                    if o.side is Side.SELL and o.symbol == symbol
                ),
                D(0),
            )
            room = int(self.exchange.position_qty(symbol) - open_sells)
        qty = min(qty, room)
        if qty < 1:
            return
        self.counter += 1
        order = Order(
            client_order_id=f"sm-{self.counter}",
            strategy_id=next(iter(STRATEGIES[symbol])),
            symbol=symbol,
            side=side,
            qty=D(qty),
            created_ns=self.clock.now_ns(),
        )

        async def go() -> None:
            assert await self.ledger.reserve(order)
            self.broker.mode = mode
            self.worker.submit_soon(order.client_order_id)
            after = await self.worker.process(order)
            self.broker.mode = "ok"
            event(f"submit ({mode}) left the order {after.status.value if after else None}")

        self.run(go())

    @rule(seconds=st.sampled_from([0.1, 0.6, 1.0, 2.5]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.exchange.process()
        self.collect()

    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        self.collect()
        if not self.pending:
            return
        shuffled = data.draw(st.permutations(self.pending), label="order")
        copies = data.draw(
            st.lists(st.sampled_from([0, 1, 1, 2]), min_size=len(shuffled), max_size=len(shuffled)),
            label="copies",
        )
        self.pending = []
        if 0 in copies:
            event("stream updates lost")
        if 2 in copies:
            event("stream updates duplicated")

        async def go() -> None:
            for update, times in zip(shuffled, copies, strict=True):
                for _ in range(times):
                    await self.stream.handle_update(update)

        self.run(go())

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        open_orders = self.run(self.ledger.open_orders())
        if not open_orders:
            return
        order = data.draw(st.sampled_from(open_orders), label="cancel")
        self.run(self.worker.cancel(order.client_order_id, "test cancel"))

    @rule(
        symbol=st.sampled_from(sorted(PRICES)),
        qty=st.integers(1, 5),
        marketable=st.booleans(),
        mode=st.sampled_from(["ok", "ok", "drop", "refuse"]),
    )
    def replace(self, symbol: str, qty: int, marketable: bool, mode: str) -> None:
        """A resting limit buy, then an operator's replace of it (new quantity and limit, marketable or
        not), carried out at once through a broker that may lose the answer or refuse before sending."""
        price = PRICES[symbol]
        if self.exchange.account().buying_power < price * 12:
            return
        self.counter += 1
        resting = Order(
            client_order_id=f"sm-{self.counter}",
            strategy_id=next(iter(STRATEGIES[symbol])),
            symbol=symbol,
            side=Side.BUY,
            qty=D(qty + 1),
            order_type=OrderType.LIMIT,
            limit_price=price / 2,
            created_ns=self.clock.now_ns(),
        )
        new_limit = price if marketable else price * D("0.6")

        async def go() -> None:
            assert await self.ledger.reserve(resting)
            self.worker.submit_soon(resting.client_order_id)
            await self.worker.process(resting)
            params = {"qty": str(qty), "limit_price": str(new_limit)}
            await self.ledger.request_at_broker(
                "replace", resting.client_order_id, params, "test", "op", self.clock.now_ns()
            )
            await BrokerRequests(self.ledger, self.broker, self.clock, self.worker).carry_out()
            self.broker.mode = mode
            for fresh in await self.ledger.open_orders():
                if fresh.replaces == resting.client_order_id and fresh.status is OrderStatus.RESERVED:
                    self.worker.submit_soon(fresh.client_order_id)
                    after = await self.worker.process(fresh)
                    event(f"replace ({mode}) left the replacement {after.status.value if after else None}")
            self.broker.mode = "ok"

        self.run(go())

    @rule()
    def resolve(self) -> None:
        self.run(self.worker.resolve_pending())

    @rule()
    def reconcile_now(self) -> None:
        self.run(self.reconcile())

    @rule()
    def restart(self) -> None:
        """Everything in memory is lost, in-flight stream updates included; the files remain."""
        self.collect()
        self.pending = []
        self.exchange.unsubscribe(self.updates)
        self.run(self.ledger.close())
        self.ledger, self.worker = self.run(self._open())
        self.updates = self.exchange.subscribe()

        async def start() -> None:
            await self.worker.resolve_pending()
            await self.reconcile()

        self.run(start())

    @rule()
    def settle(self) -> None:
        async def go() -> None:
            for _ in range(3):
                self.clock.advance(3)
                self.exchange.process()
                await self.worker.resolve_pending()
            self.clock.advance(3)
            self.exchange.process()
            self.collect()
            pending, self.pending = self.pending, []
            for update in pending:
                await self.stream.handle_update(update)
            await self.reconcile()

        self.run(go())
        ledger_fills = {
            row[0] for row in self.run(ledger_query(self.ledger, "SELECT execution_id FROM fills"))
        }
        exchange_fills = {fill.execution_id for fill in self.exchange.fills()}
        assert ledger_fills == exchange_fills
        positions = self.run(self.ledger.account_positions())
        for symbol in PRICES:
            assert positions.get(symbol, D(0)) == self.exchange.position_qty(symbol), symbol
        stuck = [
            (o.client_order_id, o.status.value)
            for o in self.run(self.ledger.open_orders())
            if o.status in (OrderStatus.RESERVED, OrderStatus.UNKNOWN)
        ]
        assert stuck == []
        for state in self.exchange.list_orders(status="all"):
            order = self.run(self.ledger.get_order(state.client_order_id))
            assert order is not None and order.filled_qty == state.filled_qty, state.client_order_id
            if state.status.is_terminal:
                assert order.status is state.status, (state.client_order_id, order.status, state.status)

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def one_exchange_order_per_client_order_id_and_all_reserved(self) -> None:
        ids = [state.client_order_id for state in self.exchange.list_orders(status="all")]
        assert len(ids) == len(set(ids))
        reserved = {
            row[0] for row in self.run(ledger_query(self.ledger, "SELECT client_order_id FROM orders"))
        }
        assert set(ids) <= reserved

    @invariant()
    def fills_counted_once_and_never_past_the_quantity(self) -> None:
        rows = self.run(
            ledger_query(self.ledger, "SELECT execution_id, client_order_id, side, symbol, qty FROM fills")
        )
        execution_ids = [row[0] for row in rows]
        assert len(execution_ids) == len(set(execution_ids))
        assert set(execution_ids) <= {fill.execution_id for fill in self.exchange.fills()}
        per_order: dict[str, Decimal] = {}
        per_symbol: dict[str, Decimal] = {}
        for _, coid, side, symbol, qty in rows:
            per_order[coid] = per_order.get(coid, D(0)) + D(qty)
            signed = D(qty) if side == Side.BUY.value else -D(qty)
            per_symbol[symbol] = per_symbol.get(symbol, D(0)) + signed
        for coid, filled in per_order.items():
            order = self.run(self.ledger.get_order(coid))
            assert order is not None and filled <= order.qty
        for order in self.run(self.ledger.open_orders()):
            assert order.filled_qty <= order.qty
        positions = self.run(self.ledger.account_positions())
        for symbol, qty in per_symbol.items():
            assert positions.get(symbol, D(0)) == qty, "the position is the sum of its fills"

    def teardown(self) -> None:
        try:
            self.run(self.ledger.close())
            self.run(self.broker.close())
        finally:
            self.exchange.close()
            self.runner.close()
            self.tmp.cleanup()


def test_order_path_keeps_its_promises_under_faults_and_restarts() -> None:
    """Lost answers, 429s, messy streams, cancels, replaces and restarts: one order per id, fills once."""
    run_state_machine_as_test(
        OrderPathMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
