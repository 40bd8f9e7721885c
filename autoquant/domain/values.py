"""Value types shared by every model: enums, exact decimals, symbols and UTC time.

Money and quantities are ``Decimal`` from the wire to the report. A float on input is taken through
its shortest repr (``0.1`` becomes ``Decimal("0.1")``, never ``0.1000000000000000055…``); booleans,
NaN and infinities are refused. Datetimes must carry a timezone and are normalised to UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, PlainSerializer


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    #: Becomes a market order once the price trades at or through ``stop_price``.
    STOP = "stop"
    #: Becomes a limit order at ``limit_price`` once the price trades at or through ``stop_price``.
    STOP_LIMIT = "stop_limit"
    #: A stop that follows the price: ``trail_price`` (dollars) or ``trail_percent`` away from the
    #: high-water mark (a sell's highest price since acceptance, a buy's lowest); then a market order.
    TRAILING_STOP = "trailing_stop"

    @property
    def needs_limit_price(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT)

    @property
    def needs_stop_price(self) -> bool:
        return self in (OrderType.STOP, OrderType.STOP_LIMIT)


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    #: Market (limit) on open: trades only in the opening auction of the next regular session.
    OPG = "opg"
    #: Market (limit) on close: trades only in the closing auction of the session.
    CLS = "cls"


def to_decimal(value: Any) -> Decimal:
    """Convert wire input to an exact finite Decimal, or raise ValueError saying why."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    else:
        raise ValueError(f"expected a decimal number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return result


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value}")
    return value


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


#: The most decimal places a broker takes in a quantity (Alpaca's fractional shares: 9).
MAX_QTY_DECIMALS = 9


def _broker_precision(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_QTY_DECIMALS:
        raise ValueError(
            f"{value} has more than {MAX_QTY_DECIMALS} decimal places (brokers take at most "
            f"{MAX_QTY_DECIMALS}): give a quantity a broker can trade"
        )
    return value


_as_string = PlainSerializer(lambda d: str(d), return_type=str, when_used="json")

#: Any exact, finite amount (cash, P&L, signed position quantity).
Money = Annotated[Decimal, BeforeValidator(to_decimal), _as_string]
#: A strictly positive quantity or price.
Quantity = Annotated[Decimal, BeforeValidator(to_decimal), AfterValidator(_positive), _as_string]
Price = Quantity
#: A quantity an operator or a strategy asks a broker to trade: positive, at most 9 decimal places.
TradableQuantity = Annotated[
    Decimal,
    BeforeValidator(to_decimal),
    AfterValidator(_positive),
    AfterValidator(_broker_precision),
    _as_string,
]
#: Zero or more: fees, volume, filled quantity.
NonNegative = Annotated[Decimal, BeforeValidator(to_decimal), AfterValidator(_non_negative), _as_string]

_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,11}(/[A-Z]{2,6})?$")


def _symbol(value: str) -> str:
    if not _SYMBOL.fullmatch(value):
        raise ValueError(f"{value!r} is not a symbol: use upper-case tickers such as 'AAPL' or 'BTC/USD'")
    return value


Symbol = Annotated[str, AfterValidator(_symbol)]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def _identifier(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(f"{value!r} is not an identifier: 1-64 letters, digits, '_', '.', ':' or '-'")
    return value


#: Strategy ids, decision ids and other names we mint or accept from config.
Identifier = Annotated[str, AfterValidator(_identifier)]


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: A timezone-aware datetime, normalised to UTC. Naive datetimes are refused by pydantic.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]


def to_ns(moment: datetime) -> int:
    """UTC nanoseconds since the epoch, exact to the microsecond a datetime holds."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: attach a timezone (UTC) before converting")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def utc_day_start_ns(ns: int) -> int:
    """Midnight UTC of the day ``ns`` falls in."""
    return ns - ns % 86_400_000_000_000


def iso_utc(ns: int) -> str:
    """UTC nanoseconds as ``2026-01-05T14:30:00.000000Z``: always microseconds, as the logs write."""
    return from_ns(ns).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_ns(ns: int) -> datetime:
    """The UTC datetime for nanoseconds since the epoch (sub-microsecond digits dropped)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest // 1_000)


class OrderTermsError(ValueError):
    """An order's terms break a rule; ``field`` names the term at fault (an operator's face reports it:
    HTTP 422 naming the field, the CLI's one line)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def check_limit_price(
    order_type: OrderType, limit_price: Decimal | None, stop_price: Decimal | None = None
) -> None:
    """Limit and stop-limit orders need a limit price, stop and stop-limit orders a stop price; an
    order type that takes neither refuses them."""
    if order_type.needs_limit_price and limit_price is None:
        raise OrderTermsError(f"limit_price is required for a {order_type.value} order", "limit_price")
    if not order_type.needs_limit_price and limit_price is not None:
        raise OrderTermsError("limit_price is only for limit and stop_limit orders", "limit_price")
    if order_type.needs_stop_price and stop_price is None:
        raise OrderTermsError(f"stop_price is required for a {order_type.value} order", "stop_price")
    if not order_type.needs_stop_price and stop_price is not None:
        raise OrderTermsError("stop_price is only for stop and stop_limit orders", "stop_price")


def check_order_terms(
    order_type: OrderType,
    time_in_force: TimeInForce,
    qty: Decimal,
    notional: Decimal | None,
    trail_price: Decimal | None,
    trail_percent: Decimal | None,
    extended_hours: bool,
) -> None:
    """The venue-independent rules of an order's terms (the paper engine's ``order_rules`` keeps the
    venue's own: crypto, fractional shares, minimum notional). ``qty`` is zero exactly when
    ``notional`` (a dollar amount, market + day only) stands in for it."""
    if notional is None and qty <= 0:
        raise OrderTermsError(
            f"qty must be greater than 0, got {qty}: give a qty, or a notional instead", "qty"
        )
    if notional is not None:
        if qty != 0:
            raise OrderTermsError("give either qty or notional, not both", "notional")
        if order_type is not OrderType.MARKET or time_in_force is not TimeInForce.DAY:
            raise OrderTermsError(
                "a notional order must be a market order with time_in_force day", "notional"
            )
    trails = (trail_price is not None) + (trail_percent is not None)
    if order_type is OrderType.TRAILING_STOP:
        if trails != 1:
            raise OrderTermsError(
                "a trailing_stop order needs exactly one of trail_price and trail_percent", "trail_price"
            )
        if time_in_force not in (TimeInForce.DAY, TimeInForce.GTC):
            raise OrderTermsError("a trailing_stop order must be day or gtc", "time_in_force")
        if trail_percent is not None and trail_percent >= 100:
            raise OrderTermsError(f"trail_percent must be below 100, got {trail_percent}", "trail_percent")
    elif trails:
        raise OrderTermsError(
            "trail_price and trail_percent are only for trailing_stop orders",
            "trail_price" if trail_price is not None else "trail_percent",
        )
    if time_in_force in (TimeInForce.OPG, TimeInForce.CLS):
        if order_type not in (OrderType.MARKET, OrderType.LIMIT) or extended_hours:
            raise OrderTermsError(
                f"time_in_force {time_in_force.value} is for market and limit orders only", "time_in_force"
            )
        if qty != qty.to_integral_value():
            raise OrderTermsError(
                f"time_in_force {time_in_force.value} takes whole-share quantities only", "time_in_force"
            )
    if extended_hours and (
        order_type is not OrderType.LIMIT or time_in_force not in (TimeInForce.DAY, TimeInForce.GTC)
    ):
        raise OrderTermsError(
            "extended_hours is for limit orders with time_in_force day or gtc only", "extended_hours"
        )
