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


#: Hoisted: an enum member lookup (``Side.BUY``) costs about as much as a Decimal addition.
_BUY = Side.BUY
_HALTED = TradingState.HALTED
_REDUCING = TradingState.REDUCING
#: ``tuple.__new__`` straight: a NamedTuple's generated ``__new__`` is a Python-level call, and the
#: gate builds nine checks per call.
_new = tuple.__new__
_NOT_PAUSED = RiskCheck(PAUSED, True, "not paused")
_STATE_PASSED = {
    state: RiskCheck(TRADING_STATE, True, "trading is {}", (state.value,)) for state in TradingState
}


class _Book(NamedTuple):
    """Per-symbol position and open buy/sell quantities, before the new order.

    An open quantity is ``0 + q1 + q2 …`` in the open orders' order, so a looked-up quantity (or the
    ``_ZERO`` default) never has a positive exponent: ``pos + buys`` needs no extra ``+ 0`` to print
    the same as ``pos + buys + 0``.
    """

    position: dict[str, Decimal]
    buys: dict[str, Decimal]
    sells: dict[str, Decimal]
    #: Symbols with open orders and no position, each once.
    unheld: list[str]


def _book(snapshot: RiskSnapshot) -> _Book:
    positions = snapshot.positions
    buys: dict[str, Decimal] = {}
    sells: dict[str, Decimal] = {}
    unheld: list[str] = []
    for o in snapshot.open_orders:
        symbol = o.symbol
        side = buys if o.side is _BUY else sells
        before = side.get(symbol)
        if before is None:
            side[symbol] = _ZERO + o.remaining_qty
            if symbol not in positions and symbol not in (sells if side is buys else buys):
                unheld.append(symbol)
        else:
            side[symbol] = before + o.remaining_qty
    book: _Book = _new(_Book, (positions, buys, sells, unheld))
    return book


def _gross_exposure(
    book: _Book, prices: dict[str, Decimal], symbol: str, start: Decimal
) -> tuple[Decimal, str | None]:
    """``start`` plus the exposure of every symbol but ``symbol``, or the first held or ordered symbol
    without a price.

    A symbol's exposure quantity is ``max(|pos + open buys|, |pos - open sells|)``; zero counts
    nothing. Written out (``b if b > a else a`` is ``max(a, b)``) because a builtin call costs more
    than the Decimal comparison it makes.
    """
    position, buys, sells, unheld = book
    total = start
    for s, pos in position.items():
        if s == symbol:
            continue
        bought = buys.get(s)
        sold = sells.get(s)
        if bought is None and sold is None:
            qty = abs(pos + _ZERO)
        else:
            up = pos + (_ZERO if bought is None else bought)
            down = pos - (_ZERO if sold is None else sold)
            if down >= _ZERO:  # then 0 <= down <= up, and up is never -0: |up| is up
                qty = up
            else:
                up, down = abs(up), abs(down)
                qty = down if down > up else up
        if qty:
            price = prices.get(s)
            if price is None:
                return total, s
            total += qty * price
    for s in unheld:  # ordered, not held: |0 + buys| is buys and |0 - sells| is sells
        if s == symbol:
            continue
        bought = buys.get(s, _ZERO)
        sold = sells.get(s, _ZERO)
        qty = sold if sold > bought else bought
        if qty:
            price = prices.get(s)
            if price is None:
                return total, s
            total += qty * price
    return total, None


def is_reducing(intent: OrderIntent, snapshot: RiskSnapshot) -> bool:
    """True when the order shrinks the account's absolute position and cannot take it past zero."""
    return _reduces(intent, intent.qty, snapshot)


def _reduces(intent: OrderIntent, qty: Decimal, snapshot: RiskSnapshot) -> bool:
    pos = snapshot.positions.get(intent.symbol, _ZERO)
    if pos == 0 or (pos > 0) == (intent.side is _BUY):
        return False
    same_side = _ZERO
    for o in snapshot.open_orders:
        if o.symbol == intent.symbol and o.side is intent.side:
            same_side += o.remaining_qty
    return qty + same_side <= abs(pos)


def _run(
    intent: OrderIntent, qty: Decimal, snapshot: RiskSnapshot, limits: RiskLimits, book: _Book
) -> tuple[RiskCheck, ...]:
    """Every check, in the documented order. Written flat on purpose: it is on the tick-to-submit path
    twice per order, so values are read once into locals and checks are built with ``_new``."""
    symbol = intent.symbol
    buying = intent.side is _BUY
    position, buys, sells, _ = book
    pos = position.get(symbol, _ZERO)
    open_buys = buys.get(symbol, _ZERO)
    open_sells = sells.get(symbol, _ZERO)
    # Reducing: opposite the position, and with this side's open orders not past zero (is_reducing).
    if not pos or (pos > _ZERO) == buying:
        reducing = False
    else:
        reducing = qty + (open_buys if buying else open_sells) <= abs(pos)
    controls = snapshot.controls

    state = controls.trading_state
    if state is _HALTED:
        trading = _new(RiskCheck, (TRADING_STATE, False, "trading is halted: {}", (controls.state_reason,)))
    elif state is _REDUCING and not reducing:
        trading = _new(
            RiskCheck,
            (
                TRADING_STATE,
                False,
                "trading is reducing; {} {} {} adds exposure",
                (intent.side.value, qty, symbol),
            ),
        )
    else:
        trading = _STATE_PASSED[state]

    pause = controls.pause_reason(intent.strategy_id) if controls.paused else None
    if pause is None:
        paused = _NOT_PAUSED
    else:
        paused = _new(RiskCheck, (PAUSED, False, "{} is paused: {}", (intent.strategy_id, pause)))

    age = snapshot.data_age_ns.get(symbol)
    if age is None:
        fresh = _new(RiskCheck, (DATA_FRESHNESS, False, "no market data for {}", (symbol,)))
    else:
        max_age_s = limits.max_data_age_s
        fresh = _new(
            RiskCheck,
            (
                DATA_FRESHNESS,
                age <= max_age_s * _NS_PER_S,
                "{} data age {}ns, max {}s",
                (symbol, age, max_age_s),
            ),
        )

    prices = snapshot.last_prices
    last = prices.get(symbol)
    limit_price = intent.limit_price
    price = limit_price if limit_price is not None else last
    if price is None or last is None:
        no_price = (symbol,)
        order_check = _new(RiskCheck, (MAX_ORDER_NOTIONAL, False, _NO_PRICE + " {}", no_price))
        position_check = _new(RiskCheck, (MAX_POSITION_NOTIONAL, False, _NO_PRICE + " {}", no_price))
        gross_check = _new(RiskCheck, (MAX_GROSS_EXPOSURE, False, _NO_PRICE + " {}", no_price))
    else:
        notional = qty * price
        max_order = limits.max_order_notional
        order_check = _new(
            RiskCheck,
            (
                MAX_ORDER_NOTIONAL,
                notional <= max_order,
                "order notional {} (qty {} x {}), max {}",
                (notional, qty, price, max_order),
            ),
        )
        # This symbol's exposure is max(|pos + open buys + buy|, |pos - open sells - sell|); the new
        # order's side of it is the position after the order.
        if buying:
            after = pos + open_buys + qty
            size_after = abs(after)
            other_side = abs(pos - open_sells)
            exposure = other_side if other_side > size_after else size_after
        else:
            after = pos - open_sells - qty
            size_after = abs(after)
            other_side = abs(pos + open_buys)
            exposure = size_after if size_after > other_side else other_side
        position_notional = size_after * last
        max_position = limits.max_position_notional
        position_check = _new(
            RiskCheck,
            (
                MAX_POSITION_NOTIONAL,
                reducing or position_notional <= max_position,
                "{} position after order with open orders {} x {} = {}, max {}",
                (symbol, after, last, position_notional, max_position),
            ),
        )
        own = position_notional if exposure is size_after else exposure * last
        gross, unpriced = _gross_exposure(book, prices, symbol, own)
        if unpriced is not None:
            gross_check = _new(
                RiskCheck, (MAX_GROSS_EXPOSURE, False, _NO_PRICE + " {}, held or ordered", (unpriced,))
            )
        else:
            max_gross = limits.max_gross_exposure
            gross_check = _new(
                RiskCheck,
                (
                    MAX_GROSS_EXPOSURE,
                    reducing or gross <= max_gross,
                    "gross exposure after order {}, max {}",
                    (gross, max_gross),
                ),
            )

    equity = snapshot.equity
    pnl = equity - snapshot.start_equity
    loss_limit = limits.daily_loss_limit
    loss_check = _new(
        RiskCheck,
        (
            DAILY_LOSS_LIMIT,
            reducing or -pnl <= loss_limit,
            "today's P&L {}, loss limit {}",
            (pnl, loss_limit),
        ),
    )
    peak = snapshot.peak_equity
    drawdown = peak - equity
    max_drawdown = limits.max_drawdown
    drawdown_check = _new(
        RiskCheck,
        (
            MAX_DRAWDOWN,
            reducing or drawdown <= max_drawdown,
            "drawdown {} from peak {}, max {}",
            (drawdown, peak, max_drawdown),
        ),
    )

    recent = snapshot.recent_order_ns
    count = 1 + len(recent) - bisect_right(recent, snapshot.now_ns - _MINUTE_NS)
    max_rate = limits.max_orders_per_minute
    rate_check = _new(
        RiskCheck,
        (
            MAX_ORDERS_PER_MINUTE,
            count <= max_rate,
            "{} orders in the last minute with this one, max {}",
            (count, max_rate),
        ),
    )
    return (
        trading,
        paused,
        fresh,
        order_check,
        position_check,
        gross_check,
        loss_check,
        drawdown_check,
        rate_check,
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
    this_side = pos + buys if intent.side is _BUY else sells - pos
    bound = min(bound, limits.max_position_notional / last - this_side)
    others, _ = _gross_exposure(book, snapshot.last_prices, symbol, _ZERO)  # all priced, or no resize
    room = limits.max_gross_exposure - others
    other_side = abs(pos - sells) if intent.side is _BUY else abs(pos + buys)
    if other_side * last > room:
        return _ZERO
    return min(bound, room / last - this_side)


def check(intent: OrderIntent, snapshot: RiskSnapshot, limits: RiskLimits) -> RiskVerdict:
    """Run every check on ``intent``; see the module docstring for the exact rules."""
    book = _book(snapshot)
    checks = _run(intent, intent.qty, snapshot, limits, book)
    first = None
    for c in checks:
        if not c[1]:
            first = c
            break
    if first is None:
        verdict: RiskVerdict = _new(RiskVerdict, (True, checks, "all checks passed", None))
        return verdict
    reason = f"{first.name}: {first.detail}"
    failed = {c.name for c in checks if not c.passed}
    if not limits.resize or not failed <= NOTIONAL_CHECKS or _price_missing(checks):
        return RiskVerdict(allowed=False, checks=checks, reason=reason)
    exponent = intent.qty.as_tuple().exponent
    step = Decimal(1).scaleb(min(exponent, 0)) if isinstance(exponent, int) else Decimal(1)
    fitted = _fitting_qty(intent, snapshot, limits, book)
    resized = fitted.quantize(step, rounding=ROUND_DOWN) if fitted > 0 else _ZERO
    if resized <= 0 or resized >= intent.qty:
        return RiskVerdict(allowed=False, checks=checks, reason=f"{reason}; no smaller qty fits")
    if any(not c.passed for c in _run(intent, resized, snapshot, limits, book)):
        return RiskVerdict(allowed=False, checks=checks, reason=f"{reason}; no smaller qty fits")
    return RiskVerdict(
        allowed=True,
        checks=checks,
        reason=f"resized from {intent.qty} to {resized}: {reason}",
        resized_qty=resized,
    )


def _price_missing(checks: tuple[RiskCheck, ...]) -> bool:
    return any(not c.passed and c.detail.startswith(_NO_PRICE) for c in checks)
