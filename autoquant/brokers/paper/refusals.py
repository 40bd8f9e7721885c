"""Why the paper exchange refuses a request, with Alpaca's HTTP status and error code for each.

The checks are pure functions over the exchange's working set (open orders, prices, positions, cash),
so the rules read in one place:

- a buy needs buying power: its estimated cost (qty at the limit, the stop, a trailing stop's first
  stop, or the current price, with slippage and fee; a notional buy's amount and fee) may not
  exceed cash minus the estimated cost of the open buys (403, 40310000); a market buy for a symbol
  with no price yet cannot be priced and is checked again when it fills;
- **no short selling**: a sell may not exceed the position minus the open sells (403, 40310000);
- unknown symbols are 422; a known client order id is 422, 40010001; unknown order ids are 404.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, localcontext

from autoquant.brokers.paper.fill_model import cost_estimate
from autoquant.brokers.paper.store import OrderRecord
from autoquant.brokers.paper.trailing import trail_stop
from autoquant.brokers.settings import PaperSettings
from autoquant.domain.broker import BrokerOrderState, OrderRequest
from autoquant.domain.values import OrderType, Side
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


def notional_cost(notional: Decimal, settings: PaperSettings) -> Decimal:
    """What a notional buy may cost: its amount and the fee on it."""
    return notional + notional * settings.fee_bps / 10_000


def buy_commitment(record: OrderRecord, prices: Mapping[str, Decimal], settings: PaperSettings) -> Decimal:
    """What the rest of an open buy may still cost (zero for sells and for unpriced market buys)."""
    state = record.state
    if state.side is Side.BUY and state.notional is not None:
        return notional_cost(state.notional, settings) if state.filled_qty == 0 else Decimal(0)
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
    """Raise ``BrokerRejected`` (403) when the account cannot pay for, or deliver, ``request``.

    A notional sell is measured at the current price; with none yet it is refused (422)."""
    price = prices.get(request.symbol)
    qty = request.qty
    if request.notional is not None and request.side is Side.SELL:
        if price is None:
            raise BrokerRejected(
                f"no price for {request.symbol} yet: a notional sell cannot be sized, send qty",
                status=422,
                code=CODE_UNPROCESSABLE,
            )
        qty = request.notional / price
    if request.side is Side.BUY:
        reference = request.limit_price or request.stop_price or price
        if request.order_type is OrderType.TRAILING_STOP and price is not None:
            reference = trail_stop(Side.BUY, price, request.trail_price, request.trail_percent)
        if reference is None and request.notional is None:
            return  # checked again when it fills
        with localcontext() as ctx:
            ctx.prec = MONEY_PRECISION
            if request.notional is not None:
                needed = notional_cost(request.notional, settings)
            else:
                assert qty is not None and reference is not None  # OrderRequest: qty or notional
                needed = cost_estimate(qty, reference, settings.slippage_bps, settings.fee_bps)
            available = buying_power(cash, open_orders, prices, settings)
        if needed > available:
            raise BrokerRejected(
                f"insufficient buying power (required: {needed}, available: {available})",
                status=403,
                code=CODE_FORBIDDEN,
            )
        return
    assert qty is not None  # OrderRequest: qty or notional, and a notional sell was sized above
    committed = sum(
        (
            _remaining_qty(r.state, prices)
            for r in open_orders
            if r.state.symbol == request.symbol and r.state.side is Side.SELL
        ),
        Decimal(0),
    )
    available = position_qty - committed
    if qty > available:
        raise BrokerRejected(
            f"insufficient qty available for order (requested: {qty}, available: {available});"
            " short selling is not supported",
            status=403,
            code=CODE_FORBIDDEN,
        )


def _remaining_qty(state: BrokerOrderState, prices: Mapping[str, Decimal]) -> Decimal:
    """What an open order may still trade: a notional one's size at the current price."""
    if state.notional is not None and state.filled_qty == 0:
        price = prices.get(state.symbol)
        return state.notional / price if price else Decimal(0)
    return state.qty - state.filled_qty
