"""Which orders the paper exchange takes, by Alpaca's rules; each refusal is 422 (42210000) naming the rule.

From Alpaca's Trading API description (``tests/brokers/spec/trading-api.json``: ``TimeInForce``,
``CreateOrderRequest``, ``PatchOrderRequest``) and its order documentation:

- **Crypto** (``BTC/USD``): time in force ``gtc`` or ``ioc`` only; types market, limit and stop_limit
  (no stop, no trailing stop); no opg/cls, no extended hours.
- **Equities**: day, gtc, opg, cls, ioc, fok.
- **opg / cls** (market/limit on open/close): market or limit orders only, whole shares, not
  extended hours; *when* they may be sent is the session's business (``auctions``).
- **trailing_stop**: ``day`` or ``gtc``; ``trail_percent`` below 100.
- **notional** (a dollar amount instead of a quantity): market orders only, ``day`` for equities
  (gtc/ioc for crypto), at least $1.
- **Fractional quantities** of an equity: market orders, ``day`` only (every asset here is
  fractionable). At most 9 decimal places for any quantity or notional.
- **extended_hours**: limit orders with ``day`` or ``gtc`` only.
- **Replace**: a notional order cannot be replaced; a fractional equity order's quantity cannot change;
  ``trail`` only on a trailing stop.
"""

from __future__ import annotations

from decimal import Decimal

from autoquant.domain.broker import BrokerOrderState, OrderRequest
from autoquant.domain.values import OrderType, TimeInForce
from autoquant.errors import BrokerRejected

CODE_UNPROCESSABLE = 42210000
MAX_DECIMALS = 9
MIN_NOTIONAL = Decimal(1)

T = TimeInForce
CRYPTO_TIME_IN_FORCE = frozenset({T.GTC, T.IOC})
CRYPTO_TYPES = frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP_LIMIT})
AUCTIONS = frozenset({T.OPG, T.CLS})


def refused(message: str) -> BrokerRejected:
    return BrokerRejected(message, status=422, code=CODE_UNPROCESSABLE)


def is_crypto(symbol: str) -> bool:
    return "/" in symbol


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def venue_time_in_force(symbol: str, time_in_force: TimeInForce) -> TimeInForce:
    """The time in force Alpaca takes for ``symbol``: crypto pairs (``BTC/USD``) know only gtc and ioc,
    so ``day`` (and ``fok``) become ``gtc``; stocks keep what was asked. The adapters (``AlpacaBroker``,
    ``PaperBroker``) apply it, so a strategy's day order for a pair is not refused by the venue."""
    if is_crypto(symbol) and time_in_force not in CRYPTO_TIME_IN_FORCE:
        return TimeInForce.GTC
    return time_in_force


def check_order(request: OrderRequest) -> None:
    """Raise ``BrokerRejected`` (422) when Alpaca would refuse ``request`` for its terms alone."""
    kind, tif = request.order_type, request.time_in_force
    for name in ("qty", "notional"):
        value = getattr(request, name)
        if value is not None and _decimals(value) > MAX_DECIMALS:
            raise refused(f"{name} can take at most {MAX_DECIMALS} decimal places, got {value}")
    if is_crypto(request.symbol):
        if tif not in CRYPTO_TIME_IN_FORCE:
            raise refused(f"invalid crypto time_in_force {tif.value!r}: use gtc or ioc")
        if kind not in CRYPTO_TYPES:
            raise refused(f"invalid crypto order type {kind.value!r}: use market, limit or stop_limit")
        if request.extended_hours:
            raise refused("extended_hours does not apply to crypto, which trades around the clock")
    fractional = request.qty is not None and request.qty != request.qty.to_integral_value()
    if tif in AUCTIONS:
        if kind not in (OrderType.MARKET, OrderType.LIMIT):
            raise refused(f"time_in_force {tif.value} is for market and limit orders only")
        if fractional or request.notional is not None:
            raise refused(f"time_in_force {tif.value} takes whole-share quantities only")
    if kind is OrderType.TRAILING_STOP:
        if tif not in (T.DAY, T.GTC):
            raise refused("a trailing_stop order must be day or gtc")
        if request.trail_percent is not None and request.trail_percent >= 100:
            raise refused(f"trail_percent must be below 100, got {request.trail_percent}")
    if request.notional is not None:
        if kind is not OrderType.MARKET:
            raise refused("notional orders must be market orders: send qty for other types")
        if not is_crypto(request.symbol) and tif is not T.DAY:
            raise refused("notional orders must be day orders")
        if request.notional < MIN_NOTIONAL:
            raise refused(f"notional must be at least {MIN_NOTIONAL}, got {request.notional}")
    if fractional and not is_crypto(request.symbol) and (kind is not OrderType.MARKET or tif is not T.DAY):
        raise refused("fractional orders must be market orders with time_in_force day")
    if request.extended_hours and (kind is not OrderType.LIMIT or tif not in (T.DAY, T.GTC)):
        raise refused("extended hours orders must be limit orders with time_in_force day or gtc")


def check_replace(old: BrokerOrderState, request: OrderRequest) -> None:
    """Raise ``BrokerRejected`` (422) when Alpaca would refuse replacing ``old`` by ``request``."""
    if old.notional is not None:
        raise refused("a notional order cannot be replaced: cancel it and submit a new one")
    fractional = old.qty != old.qty.to_integral_value()
    if fractional and not is_crypto(old.symbol) and request.qty != old.qty:
        raise refused("the quantity of a fractional order cannot be changed")
    check_order(request)
