"""Manual orders, on the one command layer (``autoquant order`` and ``POST /api/v1/orders/submit``): every
order type a strategy's intent takes, checked by the same domain rules (``check_order_terms``) before
anything is written, so both faces refuse a bad request with the same one line naming the field.
``orders/simulate`` checks its proposed order's terms here too."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from pydantic import ValidationError

from autoquant.domain.orders import Order
from autoquant.domain.values import OrderTermsError
from autoquant.ledger import Ledger
from autoquant.ledger.surface import ManualOrder
from autoquant.operator.commands import CommandConflict, CommandInvalid, Outcome, reason_given
from autoquant.operator.text import order_size

#: A manual order's client order id: the caller's idempotency key, never one of the daemon's (``aq-``).
_MANUAL_ID = re.compile(r"^[A-Za-z0-9._:-]{1,48}$")
MANUAL_STRATEGY = "operator"


@dataclass(frozen=True)
class OrderTerms:
    """A manual order's terms, as a strategy's intent carries them: ``qty`` or ``notional`` (dollars),
    the type and its prices (``limit_price``, ``stop_price``, a trailing stop's ``trail_price`` or
    ``trail_percent``), the time in force (``opg``/``cls`` included) and extended-hours eligibility."""

    qty: Decimal | None = None
    order_type: str = "market"
    time_in_force: str = "day"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    notional: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    extended_hours: bool = False


def _terms_refusal(error: ValidationError) -> CommandInvalid:
    """The first thing wrong with an order's terms, as the domain says it, naming the field."""
    first = error.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, OrderTermsError):
        return CommandInvalid(str(cause), field=cause.field)
    field = str(first["loc"][0]) if first["loc"] else "order_type"
    message = str(cause) if isinstance(cause, ValueError) else first["msg"]
    return CommandInvalid(f"{field}: {message}", field=field)


def check_order_terms(
    *, strategy_id: str, symbol: str, side: str, terms: OrderTerms, client_order_id: str, now_ns: int
) -> Order:
    """The order these terms make, validated by the domain's own rules (``check_order_terms``, the
    checks every strategy intent passes): bad terms raise ``CommandInvalid`` naming the field."""
    try:
        return Order(
            client_order_id=client_order_id,
            strategy_id=strategy_id,
            symbol=symbol,
            side=side,
            qty=Decimal(0) if terms.qty is None else terms.qty,
            order_type=terms.order_type,
            time_in_force=terms.time_in_force,
            limit_price=terms.limit_price,
            stop_price=terms.stop_price,
            notional=terms.notional,
            trail_price=terms.trail_price,
            trail_percent=terms.trail_percent,
            extended_hours=terms.extended_hours,
            created_ns=now_ns,
            updated_ns=now_ns,
        )
    except ValidationError as error:
        raise _terms_refusal(error) from None


def check_manual_order(
    *,
    client_order_id: str,
    strategy_id: str | None,
    symbol: str,
    side: str,
    terms: OrderTerms,
    reason: str,
    actor: str,
    now_ns: int,
    strategy_ids: Iterable[str],
    symbols: Iterable[str],
) -> ManualOrder:
    """A manual order request, validated; nothing is written."""
    if not _MANUAL_ID.fullmatch(client_order_id):
        raise CommandInvalid(
            "client_order_id must be 1-48 characters of letters, digits and ._:- (it is the idempotency key)",
            field="client_order_id",
        )
    if client_order_id.startswith("aq-"):
        raise CommandInvalid(
            "client_order_id must not start with aq- (the daemon's own ids)", "client_order_id"
        )
    strategy = strategy_id or MANUAL_STRATEGY
    known = sorted(strategy_ids)
    if strategy != MANUAL_STRATEGY and strategy not in known:
        raise CommandInvalid(
            f"strategy {strategy!r} is neither {MANUAL_STRATEGY!r} nor a configured strategy "
            f"(configured: {', '.join(known) or 'none'})",
            field="strategy_id",
        )
    if symbol not in set(symbols):
        raise CommandInvalid(
            f"{symbol} is not in [marketdata] symbols: the daemon has no price for it", "symbol"
        )
    order = check_order_terms(
        strategy_id=strategy,
        symbol=symbol,
        side=side,
        terms=terms,
        client_order_id=client_order_id,
        now_ns=now_ns,
    )
    given = reason_given(reason, "reason")
    return ManualOrder(
        client_order_id,
        strategy,
        symbol,
        order.side.value,
        order.qty,
        order.order_type.value,
        order.time_in_force.value,
        order.limit_price,
        given,
        actor,
        now_ns,
        stop_price=order.stop_price,
        notional=order.notional,
        trail_price=order.trail_price,
        trail_percent=order.trail_percent,
        extended_hours=order.extended_hours,
    )


async def submit_manual_order(ledger: Ledger, order: ManualOrder) -> Outcome:
    """Record the request; the running daemon reserves it and sends it through the execution worker
    (risk-checked right before it is sent). The same request again is the same order, not a second."""
    new, recorded = await ledger.request_manual_order(order)
    if not new and not recorded.same_order(order):
        raise CommandConflict(
            f"client_order_id {order.client_order_id} already names a different order "
            f"({recorded.side} {order_size(recorded.qty, recorded.notional)} {recorded.symbol} "
            f"{recorded.order_type}): use a new id for a new order",
            field="client_order_id",
        )
    placed = await ledger.get_order(order.client_order_id)
    state = "requested" if placed is None else placed.status.value
    if new:
        message = (
            f"order {order.client_order_id} requested; the running daemon reserves it, checks it against "
            "the risk limits and sends it within a second (`autoquant trace "
            f"{order.client_order_id}` follows it)"
        )
    else:
        message = f"order {order.client_order_id} was already requested (now {state}); nothing new was placed"
    return Outcome(message, changed=new, trading_state=state)
