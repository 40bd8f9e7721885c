"""The strategy worker: for each released bar, every strategy on that symbol decides, and the decision is
recorded before anything acts.

Per bar and strategy: assemble the state (bars, this strategy's position and open orders from the
ledger, freshness), ``decide``, run the risk gate on the intent, then record the decision, the risk
event and (when allowed) the reservation in one transaction, and only then hand the order to the
execution worker. Holds are recorded too and counted by reason. Decision ids are deterministic per
(strategy, symbol, bar), so a bar replayed after a restart is recognised and not acted on twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal

import structlog

from autoquant.domain.bars import Bar
from autoquant.domain.clock import Clock
from autoquant.domain.decisions import Action, Decision, OrderIntent
from autoquant.domain.ids import client_order_id
from autoquant.domain.orders import Order
from autoquant.domain.strategy import Strategy, StrategyState
from autoquant.domain.values import utc_day_start_ns
from autoquant.ledger import Ledger
from autoquant.ledger.ledger import Book
from autoquant.ledger.records import RiskEvent
from autoquant.logs import bound
from autoquant.workers.crashpoints import crashpoint
from autoquant.workers.market import MarketState
from autoquant.workers.risk_gate import RiskGate, to_event

log = structlog.get_logger("autoquant.strategy")


class StrategyWorker:
    def __init__(
        self,
        ledger: Ledger,
        strategies: Sequence[Strategy],
        market: MarketState,
        gate: RiskGate,
        clock: Clock,
        *,
        submit: Callable[[str], None],
        max_data_age_s: float,
        heartbeat: Callable[[], None] = lambda: None,
    ) -> None:
        self.ledger = ledger
        self.strategies = list(strategies)
        self.market = market
        self.gate = gate
        self.clock = clock
        self.submit = submit
        self.max_data_age_ns = int(max_data_age_s * 1e9)
        self.heartbeat = heartbeat
        self.bars: asyncio.Queue[Bar] = asyncio.Queue(maxsize=10_000)
        self.enabled = asyncio.Event()
        #: Held while one bar is decided, so a drain never cuts a decision between its reservation
        #: and its hand-over to the execution worker.
        self.busy = asyncio.Lock()
        self.holds: Counter[str] = Counter()
        self.orders = 0
        self.denied = 0
        self.decisions = 0

    def on_bar(self, bar: Bar) -> None:
        """Called by the market-data worker for each released bar; never blocks it."""
        if self.bars.full():
            self.bars.get_nowait()  # the oldest bar is stale by now; decisions use the newest
            log.warning("strategy_queue_full", dropped_symbol=bar.symbol)
        self.bars.put_nowait(bar)

    async def run(self) -> None:
        while True:
            bar = await self.bars.get()
            self.heartbeat()
            async with self.busy:
                if not self.enabled.is_set():
                    continue  # trading is gated (start-up reconciliation, shutdown): no decisions
                for strategy in self.strategies:
                    if strategy.symbol == bar.symbol:
                        await self.decide(strategy)

    async def decide(self, strategy: Strategy) -> Decision | None:
        bars = self.market.recent(strategy.symbol, strategy.warmup + 1)
        if not bars:
            return None
        book = await self.ledger.book(utc_day_start_ns(self.clock.now_ns()))
        position, open_count, open_qty = self._holdings(strategy, book)
        state = StrategyState.assemble(
            strategy_id=strategy.id,
            symbol=strategy.symbol,
            bars=bars,
            position_qty=position,
            open_order_count=open_count,
            open_order_qty=open_qty,
            now_ns=self.clock.now_ns(),
            max_data_age_ns=self.max_data_age_ns,
        )
        decision = strategy.decide(state)
        with bound(decision_id=decision.decision_id):
            await self._act(decision, book)
        return decision

    @staticmethod
    def _holdings(strategy: Strategy, book: Book) -> tuple[Decimal, int, Decimal]:
        """This strategy's position, open order count and signed open quantity in its symbol."""
        held = book.positions.get((strategy.id, strategy.symbol))
        count, qty = 0, Decimal(0)
        for order in book.open_orders:
            if order.strategy_id == strategy.id and order.symbol == strategy.symbol:
                count += 1
                qty += order.remaining_qty * order.side.sign
        return (held.qty if held else Decimal(0)), count, qty

    async def _act(self, decision: Decision, book: Book | None = None) -> None:
        now = self.clock.now_ns()
        self.decisions += 1
        if decision.action is Action.HOLD or decision.intent is None:
            if await self.ledger.record_decision(decision, now):
                crashpoint("after_decision")
                self.holds[decision.reason] += 1
                log.debug("decision_hold", reason=decision.reason, strategy_id=decision.strategy_id)
            return
        intent = decision.intent
        verdict = await self.gate.check_intent(intent, book)
        if verdict.allowed and verdict.resized_qty is not None:
            intent = intent.model_copy(update={"qty": verdict.resized_qty})
        order = self._reservation(intent, now) if verdict.allowed else None
        risk = to_event(
            verdict,
            intent.strategy_id,
            intent.symbol,
            "decision",
            decision.decision_id,
            None if order is None else order.client_order_id,
            now,
        )
        # Shielded: once the reservation commits, it is handed to the execution worker even if this
        # task is cancelled (a shutdown), so no reservation is left that nobody knows was never sent.
        recorded, reserved = await asyncio.shield(self._record(decision, now, risk, order))
        if not recorded:
            log.info("decision_replayed", strategy_id=decision.strategy_id)
            return
        if order is None:
            self.denied += 1
            log.info("decision_denied", reason=verdict.reason, strategy_id=decision.strategy_id)
            return
        if reserved:
            self.orders += 1
            with bound(client_order_id=order.client_order_id):
                log.info(
                    "order_reserved",
                    strategy_id=order.strategy_id,
                    symbol=order.symbol,
                    side=order.side.value,
                    qty=order.qty,
                    reason=decision.reason,
                )

    async def _record(
        self, decision: Decision, now: int, risk: RiskEvent, order: Order | None
    ) -> tuple[bool, bool]:
        recorded, reserved = await self.ledger.record_decision_outcome(decision, now, risk, order)
        if recorded:
            crashpoint("after_decision")
        if reserved and order is not None:
            crashpoint("after_reservation")
            self.submit(order.client_order_id)
        return recorded, reserved

    def _reservation(self, intent: OrderIntent, now: int) -> Order:
        return Order(
            client_order_id=client_order_id(
                intent.strategy_id, intent.symbol, intent.data_time, intent.side, 0
            ),
            decision_id=intent.decision_id,
            strategy_id=intent.strategy_id,
            symbol=intent.symbol,
            side=intent.side,
            qty=intent.qty,
            order_type=intent.order_type,
            time_in_force=intent.time_in_force,
            limit_price=intent.limit_price,
            created_ns=now,
        )
