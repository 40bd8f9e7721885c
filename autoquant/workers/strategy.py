"""The strategy worker: for each released bar, every strategy on that symbol decides, and the decision is
recorded before anything acts.

Per bar and strategy: assemble the state (bars per symbol, this strategy's positions and open orders
from the ledger, freshness), ``decide``, run the risk gate on each intent, then record the decision,
what it saw (the bars, its holdings: for ``autoquant replay``), the risk event and (when allowed) the
reservation in one transaction, and only then hand the order to the execution worker. Holds are
recorded too and counted by reason (a backtest, ``defer_holds``, hands them over without waiting:
they commit ahead of the next write). Decision ids are deterministic per (strategy, symbol, bar time),
so a bar replayed after a restart is recognised and not acted on twice.

A strategy over several symbols decides once per bar time, when every one of its symbols has a bar
at that time (bars of one time arrive one after another); a time at which one symbol has no bar is
not decided on.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal

import structlog

from autoquant.domain.bars import Bar
from autoquant.domain.clock import Clock
from autoquant.domain.decisions import Action, Decision, OrderIntent
from autoquant.domain.ids import client_order_id
from autoquant.domain.orders import Order
from autoquant.domain.strategy import Holdings, Strategy, StrategyState, decisions_of
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
        #: Decisions by (action, reason), holds and orders alike: what a report counts.
        self.by_reason: Counter[tuple[str, str]] = Counter()
        #: Per symbol, the close time of the newest bar already in the ledger (recorded once each).
        self._bars_recorded: dict[str, datetime] = {}
        #: Per strategy, the bar time it last decided at (a multi-symbol strategy decides once per time).
        self._decided_at: dict[str, datetime] = {}
        #: Per strategy, the last state text recorded and what it was made from (see ``_seen``).
        self._state_json: dict[str, tuple[object, str]] = {}
        self.orders = 0
        self.denied = 0
        self.decisions = 0
        #: Hand holds to the ledger without waiting for each to commit (``Ledger.defer_decision``): a
        #: backtest's. An acting decision is still recorded, and waited for, before it acts; the holds
        #: queued before it commit first. The daemon leaves this off: each hold is durable before the
        #: next bar is looked at.
        self.defer_holds = False

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
                    if bar.symbol in strategy.symbols and self._due(strategy, bar):
                        await self.decide(strategy)

    def _due(self, strategy: Strategy, bar: Bar) -> bool:
        """Whether ``strategy`` decides on ``bar`` now: always for one symbol; for several, once every
        symbol has its bar at this time."""
        symbols = strategy.symbols
        if len(symbols) == 1:
            return True
        if self._decided_at.get(strategy.id) == bar.close_time:
            return False
        for symbol in symbols:
            newest = self.market.recent(symbol, 1)
            if not newest or newest[-1].close_time != bar.close_time:
                return False
        return True

    async def decide(self, strategy: Strategy) -> tuple[Decision, ...]:
        count = strategy.warmup + 1
        bars = {symbol: self.market.recent(symbol, count) for symbol in strategy.symbols}
        if not all(bars.values()):
            return ()
        book = await self.ledger.book(utc_day_start_ns(self.clock.now_ns()))
        holdings = self._holdings(strategy, book)
        state = StrategyState.assemble(
            strategy_id=strategy.id,
            symbols=strategy.symbols,
            bars=bars,
            holdings=holdings,
            now_ns=self.clock.now_ns(),
            max_data_age_ns=self.max_data_age_ns,
        )
        self._decided_at[strategy.id] = state.data_time
        decisions = decisions_of(strategy.decide(state))
        seen = self._seen(state)
        for decision in decisions:
            if self.defer_holds and decision.intent is None:
                self._defer(decision, seen)  # logs nothing: no log context to bind
            else:
                with bound(decision_id=decision.decision_id):
                    await self._act(decision, book, seen)
            seen = ((), seen[1])  # the bars go in with the first decision of the batch
        return decisions

    def _seen(self, state: StrategyState) -> tuple[tuple[Bar, ...], str]:
        """What the ledger keeps of the state for replay: the bars not recorded yet, and the rest of
        the state (holdings, freshness, how many bars per symbol) as JSON."""
        fresh: list[Bar] = []
        for symbol in state.symbols:
            last = self._bars_recorded.get(symbol)
            bars = state.bars[symbol]
            if last is None:
                fresh.extend(bars)
            elif bars[-1].close_time > last and (len(bars) < 2 or bars[-2].close_time <= last):
                fresh.append(bars[-1])  # the usual case: only the newest bar is new
            else:
                fresh.extend(bar for bar in bars if bar.close_time > last)
        # The same state text bar after bar (same counts, holdings, freshness): made once, reused.
        key = (
            state.symbols,
            tuple(len(state.bars[symbol]) for symbol in state.symbols),
            tuple(
                (symbol, str(held.position_qty), held.open_order_count, str(held.open_order_qty))
                for symbol, held in sorted(state.holdings.items())
            ),
            state.data_fresh,
            state.data_age_ns,
        )
        known = self._state_json.get(state.strategy_id)
        if known is not None and known[0] == key:
            return tuple(fresh), known[1]
        body = {
            "symbols": list(state.symbols),
            "bars": {symbol: len(state.bars[symbol]) for symbol in state.symbols},
            "holdings": {
                symbol: held.model_dump(mode="json") for symbol, held in sorted(state.holdings.items())
            },
            "data_fresh": state.data_fresh,
            "data_age_ns": state.data_age_ns,
        }
        text = json.dumps(body, sort_keys=True)
        self._state_json[state.strategy_id] = (key, text)
        return tuple(fresh), text

    def _bars_committed(self, bars: tuple[Bar, ...]) -> None:
        for bar in bars:
            last = self._bars_recorded.get(bar.symbol)
            if last is None or bar.close_time > last:
                self._bars_recorded[bar.symbol] = bar.close_time

    @staticmethod
    def _holdings(strategy: Strategy, book: Book) -> dict[str, Holdings]:
        """This strategy's position, open order count and signed open quantity per symbol."""
        symbols = strategy.symbols
        counts: dict[str, int] = {}
        qtys: dict[str, Decimal] = {}
        for order in book.open_orders:
            if order.strategy_id == strategy.id and order.symbol in symbols:
                counts[order.symbol] = counts.get(order.symbol, 0) + 1
                qtys[order.symbol] = (
                    qtys.get(order.symbol, Decimal(0)) + order.remaining_qty * order.side.sign
                )
        result: dict[str, Holdings] = {}
        for symbol in symbols:
            held = book.positions.get((strategy.id, symbol))
            position = held.qty if held else Decimal(0)
            if position or symbol in counts:
                result[symbol] = Holdings(
                    position_qty=position,
                    open_order_count=counts.get(symbol, 0),
                    open_order_qty=qtys.get(symbol, Decimal(0)),
                )
        return result

    async def _act(
        self,
        decision: Decision,
        book: Book | None = None,
        seen: tuple[tuple[Bar, ...], str | None] = ((), None),
    ) -> None:
        now = self.clock.now_ns()
        self.decisions += 1
        bars, state_json = seen
        if decision.action is Action.HOLD or decision.intent is None:
            if await self.ledger.record_decision(decision, now, bars=bars, state_json=state_json):
                self._bars_committed(bars)
                crashpoint("after_decision")
                self.holds[decision.reason] += 1
                self.by_reason[(decision.action.value, decision.reason)] += 1
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
        recorded, reserved = await asyncio.shield(self._record(decision, now, risk, order, bars, state_json))
        if not recorded:
            log.info("decision_replayed", strategy_id=decision.strategy_id)
            return
        self._bars_committed(bars)
        self.by_reason[(decision.action.value, decision.reason)] += 1
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

    def _defer(self, decision: Decision, seen: tuple[tuple[Bar, ...], str | None]) -> None:
        """A hold handed to the ledger without waiting (``defer_holds``)."""
        self.decisions += 1
        bars, state_json = seen
        # Marked recorded now: the ledger writes them ahead of any later write, and a failed write
        # fails the run (``defer_decision`` raises it), so no later decision relies on it.
        self._bars_committed(bars)
        self.ledger.defer_decision(
            decision,
            self.clock.now_ns(),
            bars=bars,
            state_json=state_json,
            on_commit=self._hold_recorder(decision),
        )

    def _hold_recorder(self, decision: Decision) -> Callable[[bool], None]:
        def recorded(new: bool) -> None:
            if new:
                self.holds[decision.reason] += 1
                self.by_reason[(decision.action.value, decision.reason)] += 1

        return recorded

    async def _record(
        self,
        decision: Decision,
        now: int,
        risk: RiskEvent,
        order: Order | None,
        bars: tuple[Bar, ...],
        state_json: str | None,
    ) -> tuple[bool, bool]:
        recorded, reserved = await self.ledger.record_decision_outcome(
            decision, now, risk, order, bars=bars, state_json=state_json
        )
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
            stop_price=intent.stop_price,
            notional=intent.notional,
            trail_price=intent.trail_price,
            trail_percent=intent.trail_percent,
            extended_hours=intent.extended_hours,
            created_ns=now,
        )
