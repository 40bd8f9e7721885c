"""Alpaca's JSON, read into the domain's terms, and nowhere else.

Every Alpaca status word and ``trade_updates`` event is mapped here, so the rest of autoquant never
sees one. Quantities and prices arrive as strings and stay exact ``Decimal``; timestamps (RFC 3339
with up to nine fractional digits and any offset) become UTC nanoseconds without passing through a
float or a ``datetime``.

What cannot be mapped does not crash and is never guessed:

- an order whose ``status`` word is unknown is returned with ``status = OrderStatus.UNKNOWN`` and the
  raw word in ``raw_status``: the marker the caller turns into an incident (an UNKNOWN order is looked
  up again and, if it stays unknown, halts trading through the kill switch);
- anything else that cannot be read (a missing field, an order type autoquant does not trade, an
  unknown ``trade_updates`` event such as ``trade_bust``) raises ``AlpacaPayloadError``, a
  ``BrokerError`` carrying the raw payload, so the caller records it and reconciles.

Events that report no change autoquant tracks (``done_for_day``, ``restated``, …) map to ``None``:
the adapter logs and skips them; the order's state still converges through reconciliation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from pydantic import ValidationError

from autoquant.domain.broker import BrokerAccount, BrokerOrderState, BrokerPosition, OrderUpdate
from autoquant.domain.fills import Fill
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce, to_decimal, to_ns
from autoquant.errors import BrokerPayloadInvalid

S = OrderStatus
E = OrderEventKind


class AlpacaPayloadError(BrokerPayloadInvalid):
    """Alpaca sent something autoquant cannot read; ``raw`` is the payload, kept for the incident."""


#: Statuses with a direct equivalent.
STATUS_MAP: Final[Mapping[str, OrderStatus]] = {
    "new": S.ACCEPTED,
    "accepted": S.ACCEPTED,
    "pending_new": S.ACCEPTED,
    "accepted_for_bidding": S.ACCEPTED,
    "partially_filled": S.PARTIALLY_FILLED,
    "filled": S.FILLED,
    "pending_cancel": S.PENDING_CANCEL,
    "canceled": S.CANCELED,
    "expired": S.EXPIRED,
    "rejected": S.REJECTED,
    "replaced": S.REPLACED,
}

#: Statuses that say the order is still alive at the venue (held, paused, done for today, awaiting
#: settlement): its state follows from how much has filled.
STATUS_BY_FILL: Final[frozenset[str]] = frozenset(
    {
        "done_for_day",
        "stopped",
        "suspended",
        "calculated",
        "held",
        "pending_review",
        "pending_replace",
    }
)

#: ``trade_updates`` events with a domain equivalent.
EVENT_MAP: Final[Mapping[str, OrderEventKind]] = {
    "new": E.ACCEPTED,
    "accepted": E.ACCEPTED,
    "pending_new": E.ACCEPTED,
    "partial_fill": E.PARTIAL_FILL,
    "fill": E.FILL,
    "pending_cancel": E.CANCEL_REQUESTED,
    "order_cancel_rejected": E.CANCEL_REJECTED,
    "canceled": E.CANCELED,
    "expired": E.EXPIRED,
    "rejected": E.REJECTED,
    "replaced": E.REPLACED,
}

#: Events that change nothing autoquant tracks: logged and skipped.
INFORMATIONAL_EVENTS: Final[frozenset[str]] = frozenset(
    {
        "done_for_day",
        "restated",
        "calculated",
        "suspended",
        "stopped",
        "held",
        "pending_replace",
        "order_replace_rejected",
    }
)

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9})\d*)?([Zz]|[+-]\d{2}:?\d{2})$"
)


def parse_time_ns(value: object, field: str = "timestamp") -> int:
    """RFC 3339 text (``2023-12-12T22:31:24.668464435Z``, ``…-04:00``) as exact UTC nanoseconds."""
    if not isinstance(value, str):
        raise AlpacaPayloadError(f"{field}: expected an RFC 3339 timestamp, got {value!r}", value)
    match = _RFC3339.match(value.strip())
    if match is None:
        raise AlpacaPayloadError(f"{field}: {value!r} is not an RFC 3339 timestamp", value)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        whole = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError as error:
        raise AlpacaPayloadError(f"{field}: {value!r}: {error}", value) from None
    ns = to_ns(whole) + int((fraction or "0").ljust(9, "0"))
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        ns -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * 1_000_000_000
    return ns


def format_time_ns(ns: int) -> str:
    """UTC nanoseconds as Alpaca writes them: ``2023-12-12T22:31:24.668464435Z``."""
    seconds, rest = divmod(ns, 1_000_000_000)
    whole = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{rest:09d}Z"


def _invalid(what: str, error: ValidationError, raw: object) -> AlpacaPayloadError:
    """pydantic's first complaint, naming the field: ``order.qty: Input should be greater than 0``."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return AlpacaPayloadError(f"{what}.{where}: {first['msg']}" if where else f"{what}: {first['msg']}", raw)


def expect_object(raw: object, what: str) -> Mapping[str, Any]:
    """``raw`` when it is a JSON object, else ``AlpacaPayloadError`` saying what was expected."""
    if not isinstance(raw, Mapping):
        raise AlpacaPayloadError(f"{what}: expected a JSON object, got {type(raw).__name__}", raw)
    return raw


def expect_list(raw: object, what: str) -> list[Mapping[str, Any]]:
    """``raw`` when it is a JSON array of objects, else ``AlpacaPayloadError`` naming the bad item."""
    if not isinstance(raw, list):
        raise AlpacaPayloadError(f"{what}: expected a JSON array, got {type(raw).__name__}", raw)
    for index, item in enumerate(raw):
        expect_object(item, f"{what}[{index}]")
    return raw


def _field(raw: Mapping[str, Any], name: str) -> Any:
    if name not in raw or raw[name] is None:
        raise AlpacaPayloadError(f"{name}: missing", dict(raw))
    return raw[name]


def _decimal(raw: Mapping[str, Any], name: str) -> Decimal:
    try:
        return to_decimal(_field(raw, name))
    except ValueError as error:
        raise AlpacaPayloadError(f"{name}: {error}", dict(raw)) from None


def _optional_price(raw: Mapping[str, Any], name: str) -> Decimal | None:
    """A price that Alpaca leaves null, or writes as "0", until there is one."""
    if raw.get(name) is None:
        return None
    value = _decimal(raw, name)
    return value if value > 0 else None


def map_status(raw_status: str, *, filled_qty: Decimal, qty: Decimal) -> OrderStatus:
    """Alpaca's order status as ours; an unknown word gives ``OrderStatus.UNKNOWN`` (the marker)."""
    if raw_status in STATUS_MAP:
        return STATUS_MAP[raw_status]
    if raw_status in STATUS_BY_FILL:
        if filled_qty <= 0:
            return S.ACCEPTED
        return S.FILLED if filled_qty >= qty else S.PARTIALLY_FILLED
    return S.UNKNOWN


def map_event(raw_event: str) -> OrderEventKind | None:
    """A ``trade_updates`` event as ours; None for informational ones; AlpacaPayloadError if unknown."""
    if raw_event in EVENT_MAP:
        return EVENT_MAP[raw_event]
    if raw_event in INFORMATIONAL_EVENTS:
        return None
    raise AlpacaPayloadError(f"unknown trade_updates event {raw_event!r}", raw_event)


def _enum(raw: Mapping[str, Any], names: tuple[str, ...], enum: type[Side | OrderType | TimeInForce]) -> Any:
    value = str(next((raw[n] for n in names if raw.get(n)), ""))
    try:
        return enum(value)
    except ValueError:
        raise AlpacaPayloadError(
            f"{names[0]}: {value!r} is not one of {[member.value for member in enum]}", dict(raw)
        ) from None


#: A notional order's quantity while it is not known: more than any fill, so a fill word reads "partial".
_UNKNOWN_QTY = Decimal("Infinity")


def parse_order(raw: Mapping[str, Any]) -> BrokerOrderState:
    """An Alpaca order object as a ``BrokerOrderState``.

    A notional order has no ``qty`` (Alpaca writes null) until it is known: its filled quantity once
    it has filled, zero before (``BrokerOrderState`` reads zero as "not known yet")."""
    filled_qty = _decimal(raw, "filled_qty") if raw.get("filled_qty") is not None else Decimal(0)
    notional = _optional_price(raw, "notional")
    if raw.get("qty") is None and notional is not None:
        qty = filled_qty if raw.get("status") == "filled" else Decimal(0)
    else:
        qty = _decimal(raw, "qty")
    raw_status = str(_field(raw, "status"))
    created_ns = parse_time_ns(_field(raw, "created_at"), "created_at")
    try:
        return BrokerOrderState(
            broker_order_id=str(_field(raw, "id")),
            client_order_id=str(_field(raw, "client_order_id")),
            symbol=_field(raw, "symbol"),
            side=_enum(raw, ("side",), Side),
            qty=qty,
            order_type=_enum(raw, ("type", "order_type"), OrderType),
            time_in_force=_enum(raw, ("time_in_force",), TimeInForce),
            limit_price=_optional_price(raw, "limit_price"),
            stop_price=_optional_price(raw, "stop_price"),
            notional=notional,
            trail_price=_optional_price(raw, "trail_price"),
            trail_percent=_optional_price(raw, "trail_percent"),
            hwm=_optional_price(raw, "hwm"),
            extended_hours=raw.get("extended_hours") is True,
            status=map_status(raw_status, filled_qty=filled_qty, qty=qty if qty > 0 else _UNKNOWN_QTY),
            filled_qty=filled_qty,
            filled_avg_price=_optional_price(raw, "filled_avg_price"),
            created_ns=created_ns,
            updated_ns=parse_time_ns(raw.get("updated_at") or raw["created_at"], "updated_at"),
            raw_status=raw_status,
            replaces=_optional_id(raw, "replaces"),
            replaced_by=_optional_id(raw, "replaced_by"),
        )
    except ValidationError as error:
        raise _invalid("order", error, dict(raw)) from None


def _optional_id(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise AlpacaPayloadError(f"{name}: expected an order id, got {value!r}", dict(raw))
    return value


def parse_trade_update(message: Mapping[str, Any], *, local_ts_ns: int) -> OrderUpdate | None:
    """One ``trade_updates`` message (the whole frame or its ``data``) as an ``OrderUpdate``.

    Fill events carry a ``Fill`` keyed by Alpaca's ``execution_id``. Returns None for an
    informational event; raises ``AlpacaPayloadError`` for anything unreadable.
    """
    data = message.get("data", message) if message.get("stream") == "trade_updates" else message
    if not isinstance(data, Mapping):
        raise AlpacaPayloadError("trade update: data is not an object", dict(message))
    raw_event = str(_field(data, "event"))
    kind = map_event(raw_event)
    if kind is None:
        return None
    order_raw = _field(data, "order")
    if not isinstance(order_raw, Mapping):
        raise AlpacaPayloadError("trade update: order is not an object", dict(data))
    order = parse_order(order_raw)
    broker_ts_ns = parse_time_ns(data["timestamp"]) if data.get("timestamp") else None
    fill = None
    if kind in (E.PARTIAL_FILL, E.FILL):
        try:
            fill = Fill(
                execution_id=str(_field(data, "execution_id")),
                client_order_id=order.client_order_id,
                broker_order_id=order.broker_order_id,
                symbol=order.symbol,
                side=order.side,
                qty=_decimal(data, "qty"),
                price=_decimal(data, "price"),
                broker_ts_ns=broker_ts_ns,
                local_ts_ns=local_ts_ns,
            )
        except ValidationError as error:
            raise _invalid("fill", error, dict(data)) from None
    return OrderUpdate(
        kind=kind,
        order=order,
        fill=fill,
        broker_ts_ns=broker_ts_ns,
        local_ts_ns=local_ts_ns,
        raw_event=raw_event,
    )


def parse_position(raw: Mapping[str, Any]) -> BrokerPosition:
    """A position; short positions are negative (Alpaca writes them negative, with side "short")."""
    qty = _decimal(raw, "qty")
    if raw.get("side") == "short" and qty > 0:
        qty = -qty
    try:
        return BrokerPosition(
            symbol=_field(raw, "symbol"), qty=qty, avg_entry_price=_decimal(raw, "avg_entry_price")
        )
    except ValidationError as error:
        raise _invalid("position", error, dict(raw)) from None


def parse_account(raw: Mapping[str, Any]) -> BrokerAccount:
    try:
        return BrokerAccount(
            cash=_decimal(raw, "cash"),
            equity=_decimal(raw, "equity"),
            buying_power=_decimal(raw, "buying_power"),
            currency=str(raw.get("currency") or "USD"),
        )
    except ValidationError as error:
        raise _invalid("account", error, dict(raw)) from None


def activity_execution_id(activity_id: str) -> str:
    """The execution id inside an activity id: Alpaca writes ``<time>::<uuid>``; ours is the uuid."""
    return activity_id.rsplit("::", 1)[-1]


def parse_fill_activity(raw: Mapping[str, Any], *, client_order_id: str, local_ts_ns: int) -> Fill:
    """A FILL account activity as a ``Fill``. Activities omit the client order id: the caller has it."""
    try:
        return Fill(
            execution_id=activity_execution_id(str(_field(raw, "id"))),
            client_order_id=client_order_id,
            broker_order_id=str(_field(raw, "order_id")),
            symbol=_field(raw, "symbol"),
            side=_enum(raw, ("side",), Side),
            qty=_decimal(raw, "qty"),
            price=_decimal(raw, "price"),
            broker_ts_ns=parse_time_ns(_field(raw, "transaction_time"), "transaction_time"),
            local_ts_ns=local_ts_ns,
        )
    except ValidationError as error:
        raise _invalid("fill activity", error, dict(raw)) from None


def error_code(body: str) -> tuple[int | None, str]:
    """Alpaca's error body ``{"code": …, "message": …}`` as (code, message); tolerant of any text."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None, body.strip()[:500]
    if not isinstance(parsed, dict):
        return None, body.strip()[:500]
    code = parsed.get("code")
    message = parsed.get("message")
    return (code if isinstance(code, int) else None), str(message if message is not None else body)[:500]
