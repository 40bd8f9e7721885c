"""Closing positions on the paper exchange, as Alpaca does it: a market order for the position's
quantity on the other side, placed by the venue itself under a client order id of its own (a uuid4).

``close_all`` is the engine's ``DELETE /v2/positions``: with ``cancel_orders`` every open order is
canceled first (so shares held by open sells are free to go), then each position gets its closing
order; a position that cannot be closed is reported with the venue's reason, the others still close.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from autoquant.brokers.paper.engine import PaperExchange
from autoquant.domain.broker import BrokerPosition, FlattenResult, OrderRequest
from autoquant.domain.values import OrderType, Side, TimeInForce
from autoquant.errors import BrokerError


def closing_request(position: BrokerPosition, qty: Decimal) -> OrderRequest:
    """The market order that closes ``qty`` of ``position`` (crypto pairs take gtc, stocks day)."""
    return OrderRequest(
        client_order_id=str(uuid.uuid4()),
        symbol=position.symbol,
        side=Side.SELL if position.qty > 0 else Side.BUY,
        qty=qty,
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.GTC if "/" in position.symbol else TimeInForce.DAY,
    )


def close_all(exchange: PaperExchange, *, cancel_orders: bool) -> FlattenResult:
    """Cancel every open order (``cancel_orders``), then close every position."""
    if cancel_orders:
        exchange.cancel_all()
    orders = []
    failed: dict[str, str] = {}
    for held in exchange.positions():
        try:
            orders.append(exchange.submit(closing_request(held, abs(held.qty))))
        except BrokerError as error:
            failed[held.symbol] = str(error)
    return FlattenResult(orders=tuple(orders), failed=failed)
