"""The paper exchange: a simulated venue that fills orders against the last price it was given.

The venue's state and its transactions are here; each rule lives in its own module:

- **Which orders it takes** (``order_rules``): Alpaca's combinations of type, time in force, asset
  class, notional/fractional quantities and extended hours; refusals are 422, 42210000. **Whether the
  account can** (``refusals``): buying power (403), no short selling (403), unknown symbols (422),
  duplicate client order ids (422, 40010001), ``suspend_trade`` (403).
- **How an accepted order starts** (``admission``): it may trade ``latency_s`` after acceptance (an
  ``opg``/``cls`` order at its auction, ``auctions``, against the NYSE calendar); a ``day`` order
  expires at the end of its UTC day (the clock is 24/7 unless ``market_hours``: then stock orders
  trade only in their session and day orders expire at its close); a trailing stop takes its mark.
- **What an open order does next** (``working``): ``fill_rule = "last_price"`` (the default) works
  orders against each price point (``set_price``, a bar's close); ``"next_bar"`` (the backtest's)
  against each bar's range (``bar_fills``, ``trailing``). Stops trigger at or through their stop, a
  trailing stop's stop follows its high-water mark; ioc/fok and auction orders are canceled when they
  cannot trade at their one chance.
- **One execution** (``executions``): slippage, fee, partial fills (deterministic per seed and client
  order id), notional sizing, the cash check at fill time.
- **Replace** (``PATCH /v2/orders/{id}``): an open, unfilled order, checked like a submit (without the
  old order's commitment); the old order ends REPLACED and the new one is accepted in one transaction;
  a trailing stop keeps its mark. ``links`` tells which order replaced which.
- **Account**: ``configure`` keeps Alpaca's account configurations; equity is sampled whenever a price
  or the cash moves (the last sample of a minute stands), for the portfolio history.
- **Persistence**: everything (orders, fills, cash, positions, prices, the update log) is in
  ``state_path`` (``store``); reopening restores it and open orders keep working. Under ``next_bar`` a
  bar's price is written with the next order change (or at close), not in a transaction of its own.
  Broker order ids and execution ids are uuid4.

Nothing happens by itself: ``process()`` advances the venue to ``clock.now_ns()``; ``set_price`` and
``on_bar`` call it, and ``PaperBroker.run`` calls it when ``next_due_ns()`` comes due. What updates an
order gets is in ``order_updates``; who receives them is in ``fanout``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal, localcontext
from typing import Any, Literal

from autoquant.brokers.paper.admission import admit, end_of_utc_day_ns
from autoquant.brokers.paper.executions import execute
from autoquant.brokers.paper.fanout import UpdateFanout
from autoquant.brokers.paper.market_hours import Hours
from autoquant.brokers.paper.order_rules import check_order, check_replace
from autoquant.brokers.paper.order_updates import finished_state, order_update
from autoquant.brokers.paper.refusals import (
    MONEY_PRECISION,
    buying_power,
    check_funds,
    duplicate,
    not_cancelable,
    not_found,
    not_replaceable,
    require_symbol,
    trading_suspended,
)
from autoquant.brokers.paper.store import OrderLinks, OrderRecord, PaperStore, Writer
from autoquant.brokers.paper.working import Action, Step, step_at_price, step_in_bar, would_act
from autoquant.brokers.settings import PaperSettings
from autoquant.domain.bars import Bar
from autoquant.domain.broker import (
    BrokerAccount,
    BrokerOrderState,
    BrokerPosition,
    OrderRequest,
    OrderUpdate,
)
from autoquant.domain.clock import Clock
from autoquant.domain.fills import Fill
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.domain.positions import Position
from autoquant.domain.values import TimeInForce

__all__ = ["PaperExchange", "end_of_utc_day_ns"]

_MINUTE_NS = 60_000_000_000


class PaperExchange:
    """The simulated venue. Synchronous, single-threaded (used from one event loop), persistent."""

    def __init__(
        self, settings: PaperSettings, clock: Clock, symbols: Sequence[str], *, durable: bool = True
    ) -> None:
        """``durable=False`` only for a backtest's venue (see ``PaperStore``)."""
        self.settings = settings
        self.clock = clock
        self.symbols: frozenset[str] = frozenset(symbols)
        self._latency_ns = round(settings.latency_s * 1_000_000_000)
        self._store = PaperStore(settings.state_path, durable=durable)
        cash = self._store.cash()
        if cash is None:
            cash = settings.starting_cash
            with self._store.transaction() as writer:
                writer.set_cash(cash)
            self._store.record_equity(clock.now_ns(), cash)
        self._cash: Decimal = cash
        self._open: dict[str, OrderRecord] = {r.state.broker_order_id: r for r in self._store.open_orders()}
        self._positions: dict[str, Position] = self._store.positions()
        self._prices: dict[str, Decimal] = self._store.prices()
        self._fanout = UpdateFanout()
        self._configuration: dict[str, Any] = json.loads(self._store.meta("account_configurations") or "{}")
        self._by_bar = settings.fill_rule == "next_bar"
        self._hours = Hours(settings.market_hours and not self._by_bar)
        #: Prices not written yet: (price, time) per symbol, saved by the next commit (or at close).
        self._unsaved_prices: dict[str, tuple[Decimal, int]] = {}
        #: ``last_price`` equity points not written yet: (time, equity) per minute, saved likewise.
        self._unsaved_equity: dict[int, tuple[int, Decimal]] = {}

    # --- prices ------------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> list[OrderUpdate]:
        """Work the orders against the bar (``next_bar``: its range; ``last_price``: its close), then
        take its close as the symbol's price."""
        if not self._by_bar:
            return self.set_price(bar.symbol, bar.close)
        require_symbol(self.symbols, bar.symbol)
        now = self.clock.now_ns()
        updates: list[OrderUpdate] = []
        for record in list(self._open.values()):
            if record.state.symbol == bar.symbol and record.state.created_ns < bar.close_ns:
                updates.extend(self._work_bar(record, bar, now))
        # Written with the next change that commits anyway (an order's, or at close), not per bar: a
        # price alone moves nothing under this rule, and a transaction per bar was most of its cost.
        self._prices[bar.symbol] = bar.close
        self._unsaved_prices[bar.symbol] = (bar.close, now)
        # No poke: under this rule nothing is ever due by time alone (``next_due_ns`` is None), so a
        # pump woken per bar would only find nothing to do.
        return updates

    def set_price(self, symbol: str, price: Decimal) -> list[OrderUpdate]:
        """Set the symbol's current price and work the orders.

        The price and the minute's equity point are written with the next change that commits
        anyway (an order's), before equity is read, at close, or once the minute has turned, as
        ``next_bar`` prices are: two writes per price were most of a bar's cost on the daemon's loop.
        A crash loses at most the prices and equity point of the current minute; the next bar sets
        the price again.
        """
        require_symbol(self.symbols, symbol)
        if not price > 0:
            raise ValueError(f"price for {symbol} must be positive, got {price}")
        now = self.clock.now_ns()
        self._prices[symbol] = price
        self._unsaved_prices[symbol] = (price, now)
        updates = self.process()
        now = self.clock.now_ns()
        self._unsaved_equity[now // _MINUTE_NS] = (now, self.account().equity)
        if len(self._unsaved_equity) > 1:
            self._save_unsaved()  # a minute has ended: its last point (and the prices) are written
        self._fanout.poke()
        return updates

    def last_price(self, symbol: str) -> Decimal | None:
        return self._prices.get(symbol)

    # --- orders ------------------------------------------------------------------------------

    def submit(self, request: OrderRequest) -> BrokerOrderState:
        """Accept an order or raise why not; on accept, emit ACCEPTED ("new")."""
        if self.suspended:
            raise trading_suspended()
        if self._store.order(client_order_id=request.client_order_id) is not None:
            raise duplicate(request.client_order_id)
        require_symbol(self.symbols, request.symbol)
        check_order(request)
        check_funds(
            request,
            cash=self._cash,
            open_orders=list(self._open.values()),
            prices=self._prices,
            position_qty=self.position_qty(request.symbol),
            settings=self.settings,
        )
        record = self._admit(request)
        state = record.state
        self._commit(record, [order_update(OrderEventKind.ACCEPTED, state, state.created_ns)])
        self._fanout.poke()
        return state

    def get_order(self, broker_order_id: str) -> BrokerOrderState | None:
        return self._store.order(broker_order_id=broker_order_id)

    def get_by_client_order_id(self, client_order_id: str) -> BrokerOrderState | None:
        return self._store.order(client_order_id=client_order_id)

    def list_orders(
        self,
        *,
        status: Literal["open", "closed", "all"] = "open",
        after_ns: int | None = None,
        until_ns: int | None = None,
        limit: int | None = None,
        symbols: Sequence[str] | None = None,
        direction: Literal["asc", "desc"] = "desc",
    ) -> list[BrokerOrderState]:
        """Orders by creation time: created strictly after ``after_ns`` and strictly before ``until_ns``."""
        return self._store.orders(
            status=status,
            after_ns=after_ns,
            until_ns=until_ns,
            limit=limit,
            symbols=symbols,
            direction=direction,
        )

    def cancel(self, broker_order_id: str) -> BrokerOrderState:
        """Cancel an open order now (emits CANCELED); a final one is refused with 422."""
        record = self._open.get(broker_order_id)
        if record is None:
            known = self._store.order(broker_order_id=broker_order_id)
            if known is None:
                raise not_found(broker_order_id)
            raise not_cancelable(known.status.value)
        updates = self._finish(record, OrderEventKind.CANCELED, self.clock.now_ns())
        self._fanout.poke()
        return updates[-1].order

    def cancel_all(self) -> list[tuple[str, int]]:
        """Cancel every open order; (broker order id, 200) for each."""
        canceled: list[tuple[str, int]] = []
        for order_id in list(self._open):
            self.cancel(order_id)
            canceled.append((order_id, 200))
        return canceled

    def replace(self, broker_order_id: str, request: OrderRequest) -> BrokerOrderState:
        """Replace an open, unfilled order by ``request`` (same symbol and side): the old order ends
        REPLACED ("replaced"), the new one is ACCEPTED ("new"), both in one transaction."""
        record = self._open.get(broker_order_id)
        if record is None:
            known = self._store.order(broker_order_id=broker_order_id)
            if known is None:
                raise not_found(broker_order_id)
            raise not_replaceable(f"order is already {known.status.value}")
        if record.state.filled_qty > 0:
            raise not_replaceable("order is partially filled: cancel it and submit the rest")
        if self._store.order(client_order_id=request.client_order_id) is not None:
            raise duplicate(request.client_order_id)
        check_replace(record.state, request)
        check_funds(
            request,
            cash=self._cash,
            open_orders=[r for r in self._open.values() if r is not record],
            prices=self._prices,
            position_qty=self.position_qty(request.symbol),
            settings=self.settings,
        )
        new = self._admit(request, replaces=record.state)
        state = new.state
        now = state.created_ns
        old = OrderRecord(finished_state(record.state, OrderEventKind.REPLACED, now), record.due_ns, None)
        updates = [
            order_update(OrderEventKind.REPLACED, old.state, now),
            order_update(OrderEventKind.ACCEPTED, state, now),
        ]
        with self._store.transaction() as writer:
            writer.put_order(old)
            writer.put_order(new)
            writer.add_replacement(broker_order_id, state.broker_order_id, now)
            for update in updates:
                writer.add_event(update)
        del self._open[broker_order_id]
        self._open[state.broker_order_id] = new
        self._fanout.publish(updates)
        self._fanout.poke()
        return state

    def links(self, broker_order_ids: Sequence[str]) -> dict[str, OrderLinks]:
        """Which of these orders replaced, or were replaced by, another (absent: neither)."""
        return self._store.links(broker_order_ids)

    # --- account ---------------------------------------------------------------------------------

    def configuration(self) -> dict[str, Any]:
        """The account configurations set through ``configure`` (Alpaca's names and values)."""
        return dict(self._configuration)

    def configure(self, values: dict[str, Any]) -> None:
        """Keep ``values`` (already validated); ``suspend_trade`` true refuses new orders (403)."""
        with self._store.transaction() as writer:
            writer.set_meta("account_configurations", json.dumps(values, sort_keys=True))
        self._configuration = dict(values)

    @property
    def suspended(self) -> bool:
        return self._configuration.get("suspend_trade") is True

    def equity_history(self) -> list[tuple[int, Decimal]]:
        """(time, equity) samples, the last of each minute, oldest first, up to now."""
        self._save_unsaved()
        return self._store.equity_points(until_ns=self.clock.now_ns())

    def positions(self) -> list[BrokerPosition]:
        return [
            BrokerPosition(symbol=p.symbol, qty=p.qty, avg_entry_price=p.avg_price)
            for p in sorted(self._positions.values(), key=lambda p: p.symbol)
            if p.qty != 0
        ]

    def position_qty(self, symbol: str) -> Decimal:
        position = self._positions.get(symbol)
        return Decimal(0) if position is None else position.qty

    def account(self) -> BrokerAccount:
        """Cash; equity marked at the last prices; buying power = cash minus the open buys' cost."""
        with localcontext() as ctx:
            ctx.prec = MONEY_PRECISION
            equity = self._cash + sum(
                (p.qty * self._prices.get(p.symbol, p.avg_price) for p in self._positions.values()),
                Decimal(0),
            )
            return BrokerAccount(
                cash=self._cash,
                equity=equity,
                buying_power=buying_power(self._cash, self._open.values(), self._prices, self.settings),
            )

    def fills(self, *, after_ns: int | None = None) -> list[Fill]:
        """Executions strictly after ``after_ns``, oldest first."""
        return self._store.fills(after_ns=after_ns)

    def updates_after(self, seq: int = 0, limit: int | None = None) -> list[tuple[int, OrderUpdate]]:
        """The persisted update log after sequence number ``seq`` (1-based), oldest first."""
        return self._store.events(after_seq=seq, limit=limit)

    # --- time ------------------------------------------------------------------------------------

    def process(self) -> list[OrderUpdate]:
        """Advance to ``clock.now_ns()``: expire day orders, fill due and marketable orders."""
        if self._by_bar:
            return []  # orders trade on bars only (on_bar); nothing moves with time alone
        now = self.clock.now_ns()
        updates: list[OrderUpdate] = []
        for record in list(self._open.values()):
            updates.extend(self._work(record, now))
        return updates

    def next_due_ns(self) -> int | None:
        """When ``process()`` next has work, if known; a time in the past means now."""
        if self._by_bar:
            return None
        now = self.clock.now_ns()
        due: list[int] = []
        for record in self._open.values():
            if record.expires_ns is not None:
                due.append(record.expires_ns)
            if record.due_ns > now or would_act(record, self._prices.get(record.state.symbol)):
                due.append(record.due_ns)
        return min(due, default=None)

    # --- subscriptions -----------------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[OrderUpdate]:
        """A queue that receives every update from now on."""
        return self._fanout.subscribe()

    def unsubscribe(self, queue: asyncio.Queue[OrderUpdate]) -> None:
        self._fanout.unsubscribe(queue)

    def add_watcher(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after anything that may move ``next_due_ns`` (a pump's wake-up)."""
        self._fanout.add_watcher(callback)

    def remove_watcher(self, callback: Callable[[], None]) -> None:
        self._fanout.remove_watcher(callback)

    def close(self) -> None:
        self._fanout.clear()
        self._save_unsaved()
        self._store.close()

    def _save_unsaved(self) -> None:
        if self._unsaved_prices or self._unsaved_equity:
            with self._store.transaction() as writer:
                self._save_prices(writer)

    def _save_prices(self, writer: Writer) -> None:
        """The prices and equity points not written yet, in ``writer``'s transaction."""
        for symbol, (price, ts_ns) in self._unsaved_prices.items():
            writer.set_price(symbol, price, ts_ns)
        self._unsaved_prices.clear()
        for ts_ns, equity in self._unsaved_equity.values():
            self._store.record_equity(ts_ns, equity)
        self._unsaved_equity.clear()

    # --- internals -----------------------------------------------------------------------------

    def _admit(self, request: OrderRequest, replaces: BrokerOrderState | None = None) -> OrderRecord:
        return admit(
            request,
            str(uuid.uuid4()),
            now=self.clock.now_ns(),
            latency_ns=self._latency_ns,
            by_bar=self._by_bar,
            price=self._prices.get(request.symbol),
            hours=self._hours,
            replaces=replaces,
        )

    def _work(self, record: OrderRecord, now: int) -> list[OrderUpdate]:
        state = record.state
        closed_until = None
        if self._hours.enabled:
            closed_until = self._hours.closed_until(state.symbol, state.extended_hours, now)
        step = step_at_price(record, self._prices.get(state.symbol), now, closed_until=closed_until)
        if step.action is Action.WAIT and step.record is record:
            return []  # the common case, a resting order: nothing to write
        return self._apply(record, step, now)

    def _work_bar(self, record: OrderRecord, bar: Bar, now: int) -> list[OrderUpdate]:
        return self._apply(record, step_in_bar(record, bar, now), now)

    def _apply(self, before: OrderRecord, step: Step, now: int) -> list[OrderUpdate]:
        """Carry out what ``working`` decided; a wait keeps what the order acquired (mark, trigger…)."""
        record = step.record
        if step.action is Action.EXPIRE:
            return self._finish(record, OrderEventKind.EXPIRED, now)
        if step.action is Action.CANCEL:
            return self._finish(record, OrderEventKind.CANCELED, now)
        if step.action is Action.FILL and step.price is not None:
            return self._fill(record, step.price, now)
        if record is not before:  # working returns the same record when nothing was acquired
            self._commit(record, [])
        return []

    def _fill(self, record: OrderRecord, price: Decimal, now: int) -> list[OrderUpdate]:
        symbol = record.state.symbol
        done = execute(
            record,
            price,
            now,
            settings=self.settings,
            cash=self._cash,
            position=self._positions.get(symbol, Position(symbol=symbol)),
            latency_ns=self._latency_ns,
        )
        if isinstance(done, OrderEventKind):
            return self._finish(record, done, now)
        state = done.record.state
        kind = OrderEventKind.FILL if state.status is OrderStatus.FILLED else OrderEventKind.PARTIAL_FILL
        update = order_update(kind, state, now, done.fill)
        self._commit(done.record, [update], fill=done.fill, position=done.position, cash=done.cash)
        if kind is OrderEventKind.PARTIAL_FILL and state.time_in_force is TimeInForce.IOC:
            return [update, *self._finish(done.record, OrderEventKind.CANCELED, now)]
        return [update]

    def _finish(self, record: OrderRecord, kind: OrderEventKind, now: int) -> list[OrderUpdate]:
        state = finished_state(record.state, kind, now)
        update = order_update(kind, state, now)
        self._commit(
            OrderRecord(
                state,
                record.due_ns,
                record.expires_ns,
                record.fills_done,
                record.filled_notional,
                record.triggered,
            ),
            [update],
        )
        return [update]

    def _commit(
        self,
        record: OrderRecord,
        updates: list[OrderUpdate],
        *,
        fill: Fill | None = None,
        position: Position | None = None,
        cash: Decimal | None = None,
    ) -> None:
        """Write one event durably, then make it visible in memory and to subscribers."""
        with self._store.transaction() as writer:
            self._save_prices(writer)
            writer.put_order(record)
            if fill is not None:
                writer.add_fill(fill)
            if position is not None:
                writer.put_position(position)
            if cash is not None:
                writer.set_cash(cash)
            for update in updates:
                writer.add_event(update)
        order_id = record.state.broker_order_id
        if record.state.status.is_open:
            self._open[order_id] = record
        else:
            self._open.pop(order_id, None)
        if position is not None:
            self._positions[position.symbol] = position
        if cash is not None:
            self._cash = cash
            now = self.clock.now_ns()
            self._unsaved_equity.pop(now // _MINUTE_NS, None)  # this later point stands for the minute
            self._store.record_equity(now, self.account().equity)
        self._fanout.publish(updates)
