"""The paper exchange: a simulated venue that fills orders against the last price it was given.

What it does, so that code tested against it meets the same shapes as at Alpaca:

- **Latency.** An accepted order may fill no earlier than ``latency_s`` after acceptance. Nothing
  happens by itself: ``process()`` advances the venue to ``clock.now_ns()``; ``set_price``/``on_bar``
  call it, and ``PaperBroker.run`` calls it when ``next_due_ns()`` comes due.
- **Prices.** A symbol's price is the last ``set_price`` / bar close, persisted. Market orders fill at
  it with ``slippage_bps`` against the taker (buys pay up, sells receive less), quantized to 0.0001.
  A market order for a symbol with no price yet waits until one arrives. Limit orders fill only while
  marketable (buy: price <= limit; sell: price >= limit), at the better of the limit and the slipped
  price. The fee is ``fee_bps`` of each execution's notional.
- **Stops.** A stop (stop-limit) order waits until the price trades at or through its stop (a buy at
  or above, a sell at or below), then works as a market (limit) order; the trigger is persisted.
- **Fill rule.** ``fill_rule = "last_price"`` (the default) works orders against each price point
  (``set_price``, a bar's close) as above. ``fill_rule = "next_bar"`` (the backtest's) works them
  against each bar's range instead: an order trades only on a bar released after it was accepted —
  a market order at that bar's open, a limit or stop when the bar's range reaches it (at its price, or
  at the open when the bar gaps through it); see ``bar_fills``. A day order then lives until the end
  of the UTC day of the first bar it could trade on (an order decided after the close waits for the
  next session, as Alpaca queues it).
- **Partial fills.** With ``partial_fill_probability`` an order's first execution is 20–80 % of its
  quantity; the remainder keeps working and fills at the next ``process()`` at least ``latency_s``
  later. Orders of one unit of their smallest digit (1 share, 0.1 coin) are never split.
- **Time in force.** ``day`` orders expire at the end of the UTC day they were created in (the next
  00:00 UTC), whatever the exchange calendar says; ``gtc`` orders stay. ``ioc`` and ``fok`` are decided
  at their first due ``process()``: ioc fills what it can (a partial fill included) and cancels the
  rest; fok fills all or is canceled; with no price or an unmarketable limit both are canceled.
- **Refusals at submit.** A known client order id: ``DuplicateClientOrderId`` (422, 40010001). An
  unknown symbol: ``BrokerRejected`` 422. A buy whose estimated cost (qty at the limit, or at the
  current price, with slippage and fee) exceeds cash minus the estimated cost of the open buys:
  ``BrokerRejected`` 403, 40310000 "insufficient buying power". **No short selling**: a sell for more
  than the position minus the open sells is refused with 403, 40310000 "insufficient qty available".
  A market buy accepted before any price exists is checked again at fill time; if the cash is not
  there then, it is rejected (nothing filled yet) or its remainder canceled.
- **Determinism.** Whether and how an order is split is a function of (``seed``, client order id),
  so restarts and re-runs do not change outcomes. Broker order ids and execution ids are uuid4.
- **Replace.** An open, unfilled order can be replaced (Alpaca's ``PATCH /v2/orders/{id}``): checked
  like a submit (without the old order's commitment), the old order ends REPLACED and the new one is
  accepted in one transaction; ``links`` tells which order replaced which.
- **Account.** ``configure`` keeps Alpaca's account configurations; ``suspend_trade`` refuses new
  orders (403). Equity is sampled whenever a price or the cash moves (the last sample of a minute
  stands), for the portfolio history.
- **Persistence.** Everything (orders, fills, cash, positions, prices, the sequence of updates) is
  in ``state_path``; reopening restores it and open orders keep working. Under ``next_bar`` a bar's
  price is written with the next order change (or at close), not in a transaction of its own. The
  file's cash wins over a changed ``starting_cash``.

What updates an order gets, and how they are worded, is in ``order_updates``; who receives them (update
queues, and the pump's wake-up watchers) is in ``fanout``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal, localcontext
from typing import Any, Literal

from autoquant.brokers.paper.bar_fills import BarPath, stop_reached, trade_in_bar
from autoquant.brokers.paper.fanout import UpdateFanout
from autoquant.brokers.paper.fill_model import (
    chance,
    fee_for,
    fill_price,
    is_marketable,
    partial_qty,
)
from autoquant.brokers.paper.order_updates import accepted_state, filled_state, finished_state, order_update
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
from autoquant.domain.positions import Position, apply_fill
from autoquant.domain.values import Side, TimeInForce, to_ns

DAY_NS = 86_400 * 1_000_000_000

_IMMEDIATE = frozenset({TimeInForce.IOC, TimeInForce.FOK})


def end_of_utc_day_ns(ns: int) -> int:
    """The next 00:00 UTC after ``ns``: when a day order created at ``ns`` expires."""
    return (ns // DAY_NS + 1) * DAY_NS


class PaperExchange:
    """The simulated venue. Synchronous, single-threaded (used from one event loop), persistent."""

    def __init__(self, settings: PaperSettings, clock: Clock, symbols: Sequence[str]) -> None:
        self.settings = settings
        self.clock = clock
        self.symbols: frozenset[str] = frozenset(symbols)
        self._latency_ns = round(settings.latency_s * 1_000_000_000)
        self._store = PaperStore(settings.state_path)
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
        #: ``next_bar`` prices not written yet: (price, time) per symbol, saved by the next commit.
        self._unsaved_prices: dict[str, tuple[Decimal, int]] = {}

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
        """Set the symbol's current price (persisted) and work the orders."""
        require_symbol(self.symbols, symbol)
        if not price > 0:
            raise ValueError(f"price for {symbol} must be positive, got {price}")
        with self._store.transaction() as writer:
            writer.set_price(symbol, price, self.clock.now_ns())
        self._prices[symbol] = price
        updates = self.process()
        self._store.record_equity(self.clock.now_ns(), self.account().equity)
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
        check_funds(
            request,
            cash=self._cash,
            open_orders=list(self._open.values()),
            prices=self._prices,
            position_qty=self.position_qty(request.symbol),
            settings=self.settings,
        )
        now = self.clock.now_ns()
        state = accepted_state(request, str(uuid.uuid4()), now)
        day = request.time_in_force is TimeInForce.DAY
        # next_bar: a day order's day is that of the first bar it can trade on (set by _work_bar).
        expires = end_of_utc_day_ns(now) if day and not self._by_bar else None
        record = OrderRecord(state=state, due_ns=now + self._latency_ns, expires_ns=expires)
        self._commit(record, [order_update(OrderEventKind.ACCEPTED, state, now)])
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
        check_funds(
            request,
            cash=self._cash,
            open_orders=[r for r in self._open.values() if r is not record],
            prices=self._prices,
            position_qty=self.position_qty(request.symbol),
            settings=self.settings,
        )
        now = self.clock.now_ns()
        old = OrderRecord(finished_state(record.state, OrderEventKind.REPLACED, now), record.due_ns, None)
        state = accepted_state(request, str(uuid.uuid4()), now)
        expires = end_of_utc_day_ns(now) if request.time_in_force is TimeInForce.DAY else None
        new = OrderRecord(state=state, due_ns=now + self._latency_ns, expires_ns=expires)
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
            if record.due_ns > now or self._would_act(record):
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
        if self._unsaved_prices:
            with self._store.transaction() as writer:
                self._save_prices(writer)
        self._store.close()

    def _save_prices(self, writer: Writer) -> None:
        for symbol, (price, ts_ns) in self._unsaved_prices.items():
            writer.set_price(symbol, price, ts_ns)
        self._unsaved_prices.clear()

    # --- internals -----------------------------------------------------------------------------

    def _would_act(self, record: OrderRecord) -> bool:
        """Whether a due order would change at a ``process()`` now (so it is due, not waiting)."""
        if record.state.time_in_force in _IMMEDIATE and record.fills_done == 0:
            return True
        price = self._prices.get(record.state.symbol)
        if price is None:
            return False
        state = record.state
        if state.stop_price is not None and not record.triggered:
            return stop_reached(state.side, price, state.stop_price)
        return is_marketable(state.side, price, state.limit_price)

    def _work(self, record: OrderRecord, now: int) -> list[OrderUpdate]:
        state = record.state
        if record.expires_ns is not None and now >= record.expires_ns:
            return self._finish(record, OrderEventKind.EXPIRED, now)
        if now < record.due_ns:
            return []
        immediate = state.time_in_force in _IMMEDIATE
        price = self._prices.get(state.symbol)
        if price is not None and state.stop_price is not None and not record.triggered:
            if not stop_reached(state.side, price, state.stop_price):
                return self._finish(record, OrderEventKind.CANCELED, now) if immediate else []
            record = record.with_trigger()
            self._commit(record, [])
        if price is None or not is_marketable(state.side, price, state.limit_price):
            return self._finish(record, OrderEventKind.CANCELED, now) if immediate else []
        return self._fill(record, price, now)

    def _work_bar(self, record: OrderRecord, bar: Bar, now: int) -> list[OrderUpdate]:
        """The ``next_bar`` rule: expire a day order whose day is over, else trade it in the bar."""
        state = record.state
        if now < record.due_ns:
            return []
        if state.time_in_force is TimeInForce.DAY:
            open_ns = to_ns(bar.open_time)
            if record.expires_ns is None:
                record = record.with_expiry(end_of_utc_day_ns(open_ns))
            elif open_ns >= record.expires_ns:
                return self._finish(record, OrderEventKind.EXPIRED, now)
        outcome = trade_in_bar(
            state.order_type,
            state.side,
            BarPath(bar.open, bar.high, bar.low),
            limit_price=state.limit_price,
            stop_price=state.stop_price,
            triggered=record.triggered,
        )
        if outcome.triggered and not record.triggered:
            record = record.with_trigger()
        if outcome.price is None:
            if state.time_in_force in _IMMEDIATE:
                return self._finish(record, OrderEventKind.CANCELED, now)
            self._commit(record, [])  # the expiry or the trigger it acquired, kept
            return []
        return self._fill(record, outcome.price, now)

    def _fill(self, record: OrderRecord, price: Decimal, now: int) -> list[OrderUpdate]:
        state, settings = record.state, self.settings
        remaining = state.qty - state.filled_qty
        qty = remaining
        splittable = record.fills_done == 0 and state.time_in_force is not TimeInForce.FOK
        if splittable and chance(
            settings.seed, state.client_order_id, "partial", settings.partial_fill_probability
        ):
            qty = partial_qty(remaining, settings.seed, state.client_order_id) or remaining
        with localcontext() as ctx:
            ctx.prec = MONEY_PRECISION
            px = fill_price(state.side, price, state.limit_price, settings.slippage_bps)
            fee = fee_for(qty, px, settings.fee_bps)
            notional = qty * px
            if state.side is Side.BUY and notional + fee > self._cash:
                kind = OrderEventKind.REJECTED if state.filled_qty == 0 else OrderEventKind.CANCELED
                return self._finish(record, kind, now)
            cash = self._cash - notional - fee if state.side is Side.BUY else self._cash + notional - fee
            filled = state.filled_qty + qty
            total_notional = record.filled_notional + notional
            ctx.prec = 34
            average = total_notional / filled
        new_state = filled_state(state, filled, average, now)
        done = new_state.status is OrderStatus.FILLED
        fill = Fill(
            execution_id=str(uuid.uuid4()),
            client_order_id=state.client_order_id,
            broker_order_id=state.broker_order_id,
            symbol=state.symbol,
            side=state.side,
            qty=qty,
            price=px,
            fee=fee,
            broker_ts_ns=now,
            local_ts_ns=now,
        )
        position = apply_fill(self._positions.get(state.symbol, Position(symbol=state.symbol)), fill)
        new_record = OrderRecord(
            state=new_state,
            due_ns=now + self._latency_ns,
            expires_ns=record.expires_ns,
            fills_done=record.fills_done + 1,
            filled_notional=total_notional,
            triggered=record.triggered,
        )
        kind = OrderEventKind.FILL if done else OrderEventKind.PARTIAL_FILL
        update = order_update(kind, new_state, now, fill)
        self._commit(new_record, [update], fill=fill, position=position, cash=cash)
        if not done and state.time_in_force is TimeInForce.IOC:
            return [update, *self._finish(new_record, OrderEventKind.CANCELED, now)]
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
            self._store.record_equity(self.clock.now_ns(), self.account().equity)
        self._fanout.publish(updates)
