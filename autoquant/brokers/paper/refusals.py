"""Why the paper exchange refuses a request, with Alpaca's HTTP status and error code for each.

The checks are pure functions over the exchange's working set (open orders, prices, positions, cash),
so the rules read in one place:

- a buy needs buying power: its estimated cost (qty at the limit, or at the current price, with
  slippage and fee) may not exceed cash minus the estimated cost of the open buys (403, 40310000);
  a market buy for a symbol with no price yet cannot be priced and is checked again when it fills;
- **no short selling**: a sell may not exceed the position minus the open sells (403, 40310000);
- unknown symbols are 422; a known client order id is 422, 40010001; unknown order ids are 404.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, localcontext

from autoquant.brokers.paper.fill_model import cost_estimate
from autoquant.brokers.paper.store import OrderRecord
from autoquant.brokers.settings import PaperSettings
from autoquant.domain.broker import OrderRequest
from autoquant.domain.values import Side
from autoquant.errors import BrokerNotFound, BrokerRejected, DuplicateClientOrderId

CODE_DUPLICATE = 40010001
CODE_FORBIDDEN = 40310000
CODE_NOT_FOUND = 40410000
CODE_UNPROCESSABLE = 42210000

#: Decimal precision for sums of money: wide enough that no realistic amount is rounded.
MONEY_PRECISION = 60


def duplicate(client_order_id: str) -> DuplicateClientOrderId:
    return DuplicateClientOrderId(
        f"client_order_id must be unique: {client_order_id!r} is already used",
        status=422,
        code=CODE_DUPLICATE,
    )


def not_found(broker_order_id: str) -> BrokerNotFound:
    return BrokerNotFound(f"order not found: {broker_order_id}", status=404, code=CODE_NOT_FOUND)


def not_cancelable(status: str) -> BrokerRejected:
    return BrokerRejected(
        f"order is already {status}: it cannot be canceled", status=422, code=CODE_UNPROCESSABLE
    )


def not_replaceable(why: str) -> BrokerRejected:
    return BrokerRejected(f"{why}: it cannot be replaced", status=422, code=CODE_UNPROCESSABLE)


def trading_suspended() -> BrokerRejected:
    return BrokerRejected(
        "new orders are blocked: the account's suspend_trade configuration is on",
        status=403,
        code=CODE_FORBIDDEN,
    )


def require_symbol(symbols: frozenset[str], symbol: str) -> None:
    if symbol not in symbols:
        raise BrokerRejected(
            f"unknown symbol {symbol!r}: not tradable here", status=422, code=CODE_UNPROCESSABLE
        )


def buy_commitment(record: OrderRecord, prices: Mapping[str, Decimal], settings: PaperSettings) -> Decimal:
    """What the rest of an open buy may still cost (zero for sells and for unpriced market buys)."""
    state = record.state
    reference = state.limit_price or state.stop_price or prices.get(state.symbol)
    if state.side is Side.SELL or reference is None:
        return Decimal(0)
    remaining = state.qty - state.filled_qty
    return cost_estimate(remaining, reference, settings.slippage_bps, settings.fee_bps)


def buying_power(
    cash: Decimal, open_orders: Iterable[OrderRecord], prices: Mapping[str, Decimal], settings: PaperSettings
) -> Decimal:
    """Cash minus what the open buys may still cost."""
    with localcontext() as ctx:
        ctx.prec = MONEY_PRECISION
        return cash - sum((buy_commitment(r, prices, settings) for r in open_orders), Decimal(0))


def check_funds(
    request: OrderRequest,
    *,
    cash: Decimal,
    open_orders: list[OrderRecord],
    prices: Mapping[str, Decimal],
    position_qty: Decimal,
    settings: PaperSettings,
) -> None:
    """Raise ``BrokerRejected`` (403) when the account cannot pay for, or deliver, ``request``."""
    if request.side is Side.BUY:
        reference = request.limit_price or request.stop_price or prices.get(request.symbol)
        if reference is None:
            return  # checked again when it fills
        with localcontext() as ctx:
            ctx.prec = MONEY_PRECISION
            needed = cost_estimate(request.qty, reference, settings.slippage_bps, settings.fee_bps)
            available = buying_power(cash, open_orders, prices, settings)
        if needed > available:
            raise BrokerRejected(
                f"insufficient buying power (required: {needed}, available: {available})",
                status=403,
                code=CODE_FORBIDDEN,
            )
        return
    committed = sum(
        (
            r.state.qty - r.state.filled_qty
            for r in open_orders
            if r.state.symbol == request.symbol and r.state.side is Side.SELL
        ),
        Decimal(0),
    )
    available = position_qty - committed
    if request.qty > available:
        raise BrokerRejected(
            f"insufficient qty available for order (requested: {request.qty}, available: {available});"
            " short selling is not supported",
            status=403,
            code=CODE_FORBIDDEN,
        )
