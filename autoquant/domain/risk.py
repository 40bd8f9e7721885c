"""The risk gate: pure, account-level checks of one order intent against limits.

``check(intent, snapshot, limits)`` runs every check and returns a ``RiskVerdict`` holding all the
results (for the ledger's risk events) and the first failure as the reason. The snapshot is
account-level (all strategies' positions and open orders), so two strategies that together breach
an account limit are refused: the second one sees the first one's order.

**Limits are inclusive**: a value exactly at its limit passes, anything beyond fails. That holds for
every limit alike: order notional, position notional and gross exposure ``<=`` their maximum; a
daily loss or a drawdown exactly equal to its limit still allows new risk, one cent more does not;
the order that brings the last minute's count to exactly ``max_orders_per_minute`` passes; data
exactly ``max_data_age_s`` old is fresh.

Exposure is measured conservatively: open orders count in the direction that makes them worst. A
symbol's exposure is ``max(|pos + open buys|, |pos - open sells|) x price``, with the new order added
to its side. Prices are the snapshot's last prices; an order's notional uses its limit price when it
has one. A missing price or data age fails its check (fail closed), naming the symbol.

An order *reduces* exposure when it is on the opposite side of the account's position and, together
with the open orders on its side, does not take the position past zero. HALTED refuses everything,
REDUCING and breached loss limits accept only reducing orders; pause flags refuse everything for the
paused strategy (or all strategies for an account pause).

Kept allocation-light (``RiskCheck`` is a NamedTuple) because it runs again right before submission.
"""

from __future__ import annotations

from bisect import bisect_right
from decimal import ROUND_DOWN, Decimal
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from autoquant.domain.controls import ControlState, TradingState
from autoquant.domain.decisions import OrderIntent
from autoquant.domain.values import Money, NonNegative, Price, Side, Symbol

_ZERO = Decimal(0)
_MINUTE_NS = 60_000_000_000
_NS_PER_S = 1_000_000_000
_NO_PRICE = "no last price for"

TRADING_STATE = "trading_state"
PAUSED = "paused"
DATA_FRESHNESS = "data_freshness"
MAX_ORDER_NOTIONAL = "max_order_notional"
MAX_POSITION_NOTIONAL = "max_position_notional"
MAX_GROSS_EXPOSURE = "max_gross_exposure"
DAILY_LOSS_LIMIT = "daily_loss_limit"
MAX_DRAWDOWN = "max_drawdown"
MAX_ORDERS_PER_MINUTE = "max_orders_per_minute"
#: Checks a smaller quantity can satisfy; only when these alone fail may an order be resized.
NOTIONAL_CHECKS = frozenset({MAX_ORDER_NOTIONAL, MAX_POSITION_NOTIONAL, MAX_GROSS_EXPOSURE})


class RiskLimits(BaseModel):
    """The account-level limits; ``autoquant.config.RiskSettings`` (``[risk]``) is this model.

    Limits are inclusive: exactly at a limit passes, beyond it fails.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_order_notional: Money = Decimal("10000")
    max_position_notional: Money = Decimal("20000")  # per symbol, open orders included
    max_gross_exposure: Money = Decimal("50000")  # across strategies, open orders included
    daily_loss_limit: Money = Decimal("2000")
    max_drawdown: Money = Decimal("3000")  # from the day's peak equity
    max_orders_per_minute: int = Field(default=60, gt=0)
    max_data_age_s: float = Field(default=30.0, gt=0)
    #: Shrink an order that breaches a notional limit to fit, instead of denying it.
    resize: bool = False
    #: Seconds an order may stay UNKNOWN before the kill switch halts trading.
    max_unknown_age_s: float = Field(default=60.0, gt=0)
    #: Rejects in a row that halt trading.
    max_consecutive_rejects: int = Field(default=5, gt=0)
    cancel_all_on_halt: bool = False


class OpenOrderExposure(BaseModel):
    """What is still open of one order, any strategy: it may yet fill and add to the position."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: Symbol
    side: Side
    remaining_qty: NonNegative
    #: Limit price, or the last price for a market order.
    price: Price


class RiskSnapshot(BaseModel):
    """The account as the gate sees it at ``now_ns``: all strategies, fresh from the ledger."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    now_ns: int
    #: Signed account-level position quantity per symbol (long positive), all strategies.
    positions: dict[str, Money] = {}
    last_prices: dict[str, Price] = {}
    open_orders: tuple[OpenOrderExposure, ...] = ()
    start_equity: Money
    peak_equity: Money
    equity: Money
    #: Submit times (UTC ns) of recent orders, ascending; those older than a minute before ``now_ns``
    #: are ignored.
    recent_order_ns: tuple[int, ...] = ()
    #: Nanoseconds since the newest bar per symbol.
    data_age_ns: dict[str, int] = {}
    controls: ControlState = ControlState()


class RiskCheck(NamedTuple):
    """One check's result. The detail text is formatted only when read, to keep the gate cheap."""

    name: str
    passed: bool
    template: str
    values: tuple[object, ...] = ()

    @property
    def detail(self) -> str:
        """The numbers behind the result, e.g. ``order notional 10001 (qty 1 x 10001), max 10000``."""
        return self.template.format(*self.values) if self.values else self.template

    def as_dict(self) -> dict[str, object]:
        """For the ledger's risk events: ``name``, ``passed`` and ``detail``."""
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


class RiskVerdict(NamedTuple):
    """The gate's answer. ``resized_qty`` is set when the order is allowed only at that smaller size.

    A NamedTuple like ``RiskCheck``, not a pydantic model: it is built on the hot path from values
    this module computed, so there is nothing to validate. ``as_dict`` gives the ledger's JSON shape.
    """

    allowed: bool
    checks: tuple[RiskCheck, ...]
    reason: str
    resized_qty: Decimal | None = None

    @property
    def failed(self) -> tuple[RiskCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def as_dict(self) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "resized_qty": None if self.resized_qty is None else str(self.resized_qty),
            "checks": [c.as_dict() for c in self.checks],
        }


class _Book(NamedTuple):
    """Per-symbol position and open buy/sell quantities, before the new order."""

    position: dict[str, Decimal]
    buys: dict[str, Decimal]
    sells: dict[str, Decimal]
    symbols: frozenset[str]


def _book(snapshot: RiskSnapshot) -> _Book:
    buys: dict[str, Decimal] = {}
    sells: dict[str, Decimal] = {}
    for o in snapshot.open_orders:
        target = buys if o.side is Side.BUY else sells
        target[o.symbol] = target.get(o.symbol, _ZERO) + o.remaining_qty
    return _Book(snapshot.positions, buys, sells, frozenset(snapshot.positions) | buys.keys() | sells.keys())


def _exposure_qty(book: _Book, symbol: str, extra_buy: Decimal, extra_sell: Decimal) -> Decimal:
    pos = book.position.get(symbol, _ZERO)
    return max(
        abs(pos + book.buys.get(symbol, _ZERO) + extra_buy),
        abs(pos - book.sells.get(symbol, _ZERO) - extra_sell),
    )


def is_reducing(intent: OrderIntent, snapshot: RiskSnapshot) -> bool:
    """True when the order shrinks the account's absolute position and cannot take it past zero."""
    return _reduces(intent, intent.qty, snapshot)


def _reduces(intent: OrderIntent, qty: Decimal, snapshot: RiskSnapshot) -> bool:
    pos = snapshot.positions.get(intent.symbol, _ZERO)
    if pos == 0 or (pos > 0) == (intent.side is Side.BUY):
        return False
    same_side = _ZERO
    for o in snapshot.open_orders:
        if o.symbol == intent.symbol and o.side is intent.side:
            same_side += o.remaining_qty
    return qty + same_side <= abs(pos)


def _run(
    intent: OrderIntent, qty: Decimal, snapshot: RiskSnapshot, limits: RiskLimits, book: _Book
) -> list[RiskCheck]:
    symbol = intent.symbol
    reducing = _reduces(intent, qty, snapshot)
    controls = snapshot.controls
    checks: list[RiskCheck] = []
    add = checks.append

    state = controls.trading_state
    if state is TradingState.HALTED:
        add(RiskCheck(TRADING_STATE, False, "trading is halted: {}", (controls.state_reason,)))
    elif state is TradingState.REDUCING and not reducing:
        add(
            RiskCheck(
                TRADING_STATE,
                False,
                "trading is reducing; {} {} {} adds exposure",
                (intent.side.value, qty, symbol),
            )
        )
    else:
        add(RiskCheck(TRADING_STATE, True, "trading is {}", (state.value,)))

    pause = controls.pause_reason(intent.strategy_id) if controls.paused else None
    if pause is None:
        add(RiskCheck(PAUSED, True, "not paused"))
    else:
        add(RiskCheck(PAUSED, False, "{} is paused: {}", (intent.strategy_id, pause)))

    age = snapshot.data_age_ns.get(symbol)
    if age is None:
        add(RiskCheck(DATA_FRESHNESS, False, "no market data for {}", (symbol,)))
    else:
        add(
            RiskCheck(
                DATA_FRESHNESS,
                age <= limits.max_data_age_s * _NS_PER_S,
                "{} data age {}ns, max {}s",
                (symbol, age, limits.max_data_age_s),
            )
        )

    last = snapshot.last_prices.get(symbol)
    price = intent.limit_price if intent.limit_price is not None else last
    if price is None or last is None:
        for name in (MAX_ORDER_NOTIONAL, MAX_POSITION_NOTIONAL, MAX_GROSS_EXPOSURE):
            add(RiskCheck(name, False, _NO_PRICE + " {}", (symbol,)))
    else:
        notional = qty * price
        add(
            RiskCheck(
                MAX_ORDER_NOTIONAL,
                notional <= limits.max_order_notional,
                "order notional {} (qty {} x {}), max {}",
                (notional, qty, price, limits.max_order_notional),
            )
        )
        pos = book.position.get(symbol, _ZERO)
        if intent.side is Side.BUY:
            buy, sell = qty, _ZERO
            after = pos + book.buys.get(symbol, _ZERO) + qty
        else:
            buy, sell = _ZERO, qty
            after = pos - book.sells.get(symbol, _ZERO) - qty
        position_notional = abs(after) * last
        add(
            RiskCheck(
                MAX_POSITION_NOTIONAL,
                reducing or position_notional <= limits.max_position_notional,
                "{} position after order with open orders {} x {} = {}, max {}",
                (symbol, after, last, position_notional, limits.max_position_notional),
            )
        )
        add(_gross(book, snapshot, symbol, buy, sell, limits.max_gross_exposure, reducing))

    pnl = snapshot.equity - snapshot.start_equity
    add(
        RiskCheck(
            DAILY_LOSS_LIMIT,
            reducing or -pnl <= limits.daily_loss_limit,
            "today's P&L {}, loss limit {}",
            (pnl, limits.daily_loss_limit),
        )
    )
    drawdown = snapshot.peak_equity - snapshot.equity
    add(
        RiskCheck(
            MAX_DRAWDOWN,
            reducing or drawdown <= limits.max_drawdown,
            "drawdown {} from peak {}, max {}",
            (drawdown, snapshot.peak_equity, limits.max_drawdown),
        )
    )

    recent = snapshot.recent_order_ns
    count = 1 + len(recent) - bisect_right(recent, snapshot.now_ns - _MINUTE_NS)
    add(
        RiskCheck(
            MAX_ORDERS_PER_MINUTE,
            count <= limits.max_orders_per_minute,
            "{} orders in the last minute with this one, max {}",
            (count, limits.max_orders_per_minute),
        )
    )
    return checks


def _gross(
    book: _Book,
    snapshot: RiskSnapshot,
    symbol: str,
    buy: Decimal,
    sell: Decimal,
    limit: Decimal,
    reducing: bool,
) -> RiskCheck:
    total = _exposure_qty(book, symbol, buy, sell) * snapshot.last_prices[symbol]
    for s in book.symbols:
        if s == symbol:
            continue
        qty = _exposure_qty(book, s, _ZERO, _ZERO)
        if qty == 0:
            continue
        price = snapshot.last_prices.get(s)
        if price is None:
            return RiskCheck(MAX_GROSS_EXPOSURE, False, _NO_PRICE + " {}, held or ordered", (s,))
        total += qty * price
    return RiskCheck(
        MAX_GROSS_EXPOSURE,
        reducing or total <= limit,
        "gross exposure after order {}, max {}",
        (total, limit),
    )


def _fitting_qty(intent: OrderIntent, snapshot: RiskSnapshot, limits: RiskLimits, book: _Book) -> Decimal:
    """The largest quantity the three notional limits allow, before rounding (may be <= 0)."""
    symbol = intent.symbol
    last = snapshot.last_prices[symbol]
    price = intent.limit_price if intent.limit_price is not None else last
    pos = book.position.get(symbol, _ZERO)
    buys, sells = book.buys.get(symbol, _ZERO), book.sells.get(symbol, _ZERO)
    bound = limits.max_order_notional / price
    # position and gross bounds: this side's exposure grows linearly with qty
    this_side = pos + buys if intent.side is Side.BUY else sells - pos
    bound = min(bound, limits.max_position_notional / last - this_side)
    other_symbols = _ZERO
    for s in book.symbols:
        if s != symbol:
            q = _exposure_qty(book, s, _ZERO, _ZERO)
            if q:
                other_symbols += q * snapshot.last_prices[s]
    room = limits.max_gross_exposure - other_symbols
    other_side = abs(pos - sells) if intent.side is Side.BUY else abs(pos + buys)
    if other_side * last > room:
        return _ZERO
    return min(bound, room / last - this_side)


def check(intent: OrderIntent, snapshot: RiskSnapshot, limits: RiskLimits) -> RiskVerdict:
    """Run every check on ``intent``; see the module docstring for the exact rules."""
    book = _book(snapshot)
    checks = _run(intent, intent.qty, snapshot, limits, book)
    first = None
    for c in checks:
        if not c.passed:
            first = c
            break
    if first is None:
        return RiskVerdict(True, tuple(checks), "all checks passed")
    reason = f"{first.name}: {first.detail}"
    failed = {c.name for c in checks if not c.passed}
    if not limits.resize or not failed <= NOTIONAL_CHECKS or _price_missing(checks):
        return RiskVerdict(allowed=False, checks=tuple(checks), reason=reason)
    exponent = intent.qty.as_tuple().exponent
    step = Decimal(1).scaleb(min(exponent, 0)) if isinstance(exponent, int) else Decimal(1)
    fitted = _fitting_qty(intent, snapshot, limits, book)
    resized = fitted.quantize(step, rounding=ROUND_DOWN) if fitted > 0 else _ZERO
    if resized <= 0 or resized >= intent.qty:
        return RiskVerdict(allowed=False, checks=tuple(checks), reason=f"{reason}; no smaller qty fits")
    if any(not c.passed for c in _run(intent, resized, snapshot, limits, book)):
        return RiskVerdict(allowed=False, checks=tuple(checks), reason=f"{reason}; no smaller qty fits")
    return RiskVerdict(
        allowed=True,
        checks=tuple(checks),
        reason=f"resized from {intent.qty} to {resized}: {reason}",
        resized_qty=resized,
    )


def _price_missing(checks: list[RiskCheck]) -> bool:
    return any(not c.passed and c.detail.startswith(_NO_PRICE) for c in checks)
