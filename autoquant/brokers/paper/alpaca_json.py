"""The paper exchange's state written as Alpaca's JSON, so alpaca-py's own models accept it.

The shapes follow the real payloads in ``shared/fixtures/alpaca``: decimals as strings (never
floats), timestamps as RFC 3339 with nine fractional digits, null where Alpaca writes null. This is
the inverse of ``autoquant.brokers.alpaca_mapping``; a round-trip test keeps the two honest.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from autoquant.brokers.alpaca_mapping import format_time_ns
from autoquant.brokers.paper.store import OrderLinks
from autoquant.domain.broker import BrokerAccount, BrokerOrderState, BrokerPosition, OrderUpdate
from autoquant.domain.fills import Fill
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.domain.values import Side

S = OrderStatus
E = OrderEventKind

STATUS_WORD: Final[dict[OrderStatus, str]] = {
    S.ACCEPTED: "new",
    S.PARTIALLY_FILLED: "partially_filled",
    S.FILLED: "filled",
    S.PENDING_CANCEL: "pending_cancel",
    S.CANCELED: "canceled",
    S.EXPIRED: "expired",
    S.REJECTED: "rejected",
    S.REPLACED: "replaced",
    # Never produced by the engine; written as Alpaca's nearest words rather than failing a response.
    S.RESERVED: "pending_new",
    S.UNKNOWN: "pending_new",
    S.DENIED: "rejected",
}

EVENT_WORD: Final[dict[OrderEventKind, str]] = {
    E.ACCEPTED: "new",
    E.PARTIAL_FILL: "partial_fill",
    E.FILL: "fill",
    E.CANCEL_REQUESTED: "pending_cancel",
    E.CANCEL_REJECTED: "order_cancel_rejected",
    E.CANCELED: "canceled",
    E.EXPIRED: "expired",
    E.REJECTED: "rejected",
    E.REPLACED: "replaced",
    E.SUBMIT_UNKNOWN: "pending_new",
    E.DENIED: "rejected",
}

_ASSET_NAMESPACE = uuid.UUID("6f1c2a9e-5d0b-4c1e-9a7e-3b2f0c8d4e51")


def asset_id(symbol: str) -> str:
    """A stable made-up asset id per symbol (Alpaca's is a uuid too)."""
    return str(uuid.uuid5(_ASSET_NAMESPACE, symbol))


def asset_class(symbol: str) -> str:
    return "crypto" if "/" in symbol else "us_equity"


def plain(value: Decimal) -> str:
    """A decimal as Alpaca writes numbers: positional, never ``0E-9`` or ``1E+2`` (the spec's pattern),
    without trailing zeros (``"150"``, not ``"150.0"`` as a float-sending client's echo would be)."""
    return format(value.normalize(), "f")


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else plain(value)


def position_intent(side: Side) -> str:
    """The paper venue never sells short, so a buy opens (or adds to) a long and a sell closes one."""
    return "buy_to_open" if side is Side.BUY else "sell_to_close"


def order_json(order: BrokerOrderState, links: OrderLinks | None = None) -> dict[str, Any]:
    updated = format_time_ns(order.updated_ns)
    status = order.status
    links = links or OrderLinks()
    replaced_at = links.replaced_at_ns if links.replaced_by is not None else None
    return {
        "id": order.broker_order_id,
        "client_order_id": order.client_order_id,
        "created_at": format_time_ns(order.created_ns),
        "updated_at": updated,
        "submitted_at": format_time_ns(order.created_ns),
        "filled_at": updated if status is S.FILLED else None,
        "expired_at": updated if status is S.EXPIRED else None,
        "canceled_at": updated if status is S.CANCELED else None,
        "failed_at": updated if status is S.REJECTED else None,
        "replaced_at": None if replaced_at is None else format_time_ns(replaced_at),
        "replaced_by": links.replaced_by,
        "replaces": links.replaces,
        "asset_id": asset_id(order.symbol),
        "symbol": order.symbol,
        "asset_class": asset_class(order.symbol),
        # Alpaca writes a notional order's qty as null, whether or not it has filled.
        "notional": _dec(order.notional),
        "qty": None if order.notional is not None else plain(order.qty),
        "filled_qty": plain(order.filled_qty),
        "filled_avg_price": _dec(order.filled_avg_price),
        "order_class": "simple",
        "order_type": order.order_type.value,
        "type": order.order_type.value,
        "side": order.side.value,
        "position_intent": position_intent(order.side),
        "time_in_force": order.time_in_force.value,
        "limit_price": _dec(order.limit_price),
        "stop_price": _dec(order.stop_price),
        "status": STATUS_WORD[status],
        "extended_hours": order.extended_hours,
        "legs": None,
        "trail_percent": _dec(order.trail_percent),
        "trail_price": _dec(order.trail_price),
        "hwm": _dec(order.hwm),
        "subtag": None,
        "source": None,
    }


def trade_update_json(
    update: OrderUpdate, *, position_qty: Decimal, links: OrderLinks | None = None
) -> dict[str, Any]:
    """One ``trade_updates`` frame, whole (``{"stream": "trade_updates", "data": …}``)."""
    ts = update.broker_ts_ns if update.broker_ts_ns is not None else update.order.updated_ns
    data: dict[str, Any] = {
        "event": EVENT_WORD[update.kind],
        "order": order_json(update.order, links),
        "timestamp": format_time_ns(ts),
        "position_qty": plain(position_qty),
    }
    if update.fill is not None:
        data["execution_id"] = update.fill.execution_id
        data["price"] = plain(update.fill.price)
        data["qty"] = plain(update.fill.qty)
    return {"stream": "trade_updates", "data": data}


def position_json(position: BrokerPosition, last_price: Decimal | None) -> dict[str, Any]:
    price = last_price if last_price is not None else position.avg_entry_price
    qty = position.qty
    cost_basis = qty * position.avg_entry_price
    market_value = qty * price
    unrealized = market_value - cost_basis
    plpc = (unrealized / abs(cost_basis)).quantize(Decimal("0.0001")) if cost_basis else Decimal(0)
    values = {
        "avg_entry_price": plain(position.avg_entry_price),
        "market_value": plain(market_value),
        "cost_basis": plain(cost_basis),
        "unrealized_pl": plain(unrealized),
        "unrealized_plpc": plain(plpc),
        "unrealized_intraday_pl": plain(unrealized),
        "unrealized_intraday_plpc": plain(plpc),
        "current_price": plain(price),
        "lastday_price": plain(price),
        "change_today": "0",
    }
    return {
        "asset_id": asset_id(position.symbol),
        "symbol": position.symbol,
        "exchange": "CRYPTO" if "/" in position.symbol else "NASDAQ",
        "asset_class": asset_class(position.symbol),
        "asset_marginable": False,
        "qty": plain(qty),
        "qty_available": plain(qty),
        "side": "long" if qty >= 0 else "short",
        **values,
        "usd": values,
    }


def account_json(account: BrokerAccount, *, long_value: Decimal, short_value: Decimal) -> dict[str, Any]:
    cash, equity, bp = plain(account.cash), plain(account.equity), plain(account.buying_power)
    return {
        "id": "00000000-0000-4000-8000-00000000a11c",
        "account_number": "PAPER0001",
        "status": "ACTIVE",
        "crypto_status": "ACTIVE",
        "currency": account.currency,
        "buying_power": bp,
        "regt_buying_power": bp,
        "daytrading_buying_power": bp,
        "non_marginable_buying_power": bp,
        "options_buying_power": bp,
        "cash": cash,
        "accrued_fees": "0",
        "portfolio_value": equity,
        "equity": equity,
        "last_equity": equity,
        "long_market_value": plain(long_value),
        "short_market_value": plain(short_value),
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "daytrade_count": 0,
        "multiplier": "1",
        "pattern_day_trader": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "trade_suspended_by_user": False,
        "shorting_enabled": False,
        "created_at": "2024-01-02T00:00:00Z",
    }


def fill_activities_json(fills: Sequence[Fill], orders: dict[str, BrokerOrderState]) -> list[dict[str, Any]]:
    """FILL account activities, oldest first; ``id`` is the execution id, as the stream gives it.

    ``cum_qty`` and ``leaves_qty`` are the order's as of each fill, which needs every fill of the
    order before it: pass the complete history of the orders concerned, then filter.
    """
    cumulative: dict[str, Decimal] = {}
    result = []
    for fill in fills:
        order_id = fill.broker_order_id or ""
        cum = cumulative.get(order_id, Decimal(0)) + fill.qty
        cumulative[order_id] = cum
        order = orders.get(order_id)
        leaves = max(order.qty - cum, Decimal(0)) if order is not None else Decimal(0)
        ts = fill.broker_ts_ns if fill.broker_ts_ns is not None else fill.local_ts_ns
        result.append(
            {
                "id": fill.execution_id,
                "activity_type": "FILL",
                "transaction_time": format_time_ns(ts),
                "type": "fill" if leaves == 0 else "partial_fill",
                "price": plain(fill.price),
                "qty": plain(fill.qty),
                "side": fill.side.value,
                "symbol": fill.symbol,
                "leaves_qty": plain(leaves),
                "order_id": order_id,
                "cum_qty": plain(cum),
                "order_status": "filled" if leaves == 0 else "partially_filled",
            }
        )
    return result


def error_json(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}
