"""One execution of an order at a price, as a pure function: how much, at what price and fee, and what it
does to the order, the position and the cash.

- The price is the slipped price, never worse than the limit (``fill_model``).
- A notional order is sized when it fills: the amount's worth at that price, rounded down to 9
  decimals; a sell no more than the position. It is never split.
- With ``partial_fill_probability`` an order's first execution is 20–80 % of its quantity, decided
  by (seed, client order id); fok, auction and notional orders are filled whole.
- A buy the cash cannot pay for is refused at fill time: rejected if nothing filled yet, else the
  remainder canceled.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, localcontext
from typing import NamedTuple

from autoquant.brokers.paper.fill_model import chance, fee_for, fill_price, notional_qty, partial_qty
from autoquant.brokers.paper.order_rules import AUCTIONS
from autoquant.brokers.paper.order_updates import filled_state
from autoquant.brokers.paper.refusals import MONEY_PRECISION
from autoquant.brokers.paper.store import OrderRecord
from autoquant.brokers.settings import PaperSettings
from autoquant.domain.fills import Fill
from autoquant.domain.orders import OrderEventKind
from autoquant.domain.positions import Position, apply_fill
from autoquant.domain.values import Side, TimeInForce

#: Orders filled whole or not at all: fok and the auctions (and notional ones, sized when they fill).
WHOLE = frozenset({TimeInForce.FOK, *AUCTIONS})


class Execution(NamedTuple):
    record: OrderRecord
    fill: Fill
    position: Position
    cash: Decimal


def execute(
    record: OrderRecord,
    price: Decimal,
    now: int,
    *,
    settings: PaperSettings,
    cash: Decimal,
    position: Position,
    latency_ns: int,
) -> Execution | OrderEventKind:
    """The execution of ``record`` at ``price`` (before slippage) at ``now``, or how the order ends
    instead (REJECTED, CANCELED) when it cannot be paid for or sized."""
    state = record.state
    with localcontext() as ctx:
        ctx.prec = MONEY_PRECISION
        px = fill_price(state.side, price, state.limit_price, settings.slippage_bps)
    if state.notional is not None and state.filled_qty == 0:
        sized = notional_qty(state.notional, px, position.qty if state.side is Side.SELL else None)
        if sized is None:
            return OrderEventKind.REJECTED
        state = state.model_copy(update={"qty": sized})
    remaining = state.qty - state.filled_qty
    qty = remaining
    splittable = record.fills_done == 0 and state.time_in_force not in WHOLE and state.notional is None
    if splittable and chance(
        settings.seed, state.client_order_id, "partial", settings.partial_fill_probability
    ):
        qty = partial_qty(remaining, settings.seed, state.client_order_id) or remaining
    with localcontext() as ctx:
        ctx.prec = MONEY_PRECISION
        fee = fee_for(qty, px, settings.fee_bps)
        notional = qty * px
        if state.side is Side.BUY and notional + fee > cash:
            return OrderEventKind.REJECTED if state.filled_qty == 0 else OrderEventKind.CANCELED
        cash = cash - notional - fee if state.side is Side.BUY else cash + notional - fee
        filled = state.filled_qty + qty
        total_notional = record.filled_notional + notional
        ctx.prec = 34
        average = total_notional / filled
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
    new_record = OrderRecord(
        state=filled_state(state, filled, average, now),
        due_ns=now + latency_ns,
        expires_ns=record.expires_ns,
        fills_done=record.fills_done + 1,
        filled_notional=total_notional,
        triggered=record.triggered,
    )
    return Execution(new_record, fill, apply_fill(position, fill), cash)
