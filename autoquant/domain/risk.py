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

The gate's data (limits, snapshot, check results, check names) is in ``risk_models``, and the book and
gross-exposure arithmetic in ``exposure``; this module holds the checks. The public names of
``risk_models`` are re-exported here, so ``from autoquant.domain.risk import RiskLimits`` keeps working.
"""

from __future__ import annotations

from bisect import bisect_right
from decimal import ROUND_DOWN, Decimal

from autoquant.domain.controls import ACCOUNT, TradingState
from autoquant.domain.decisions import OrderIntent
from autoquant.domain.exposure import Book, book_of, gross_exposure
from autoquant.domain.risk_models import (
    DAILY_LOSS_LIMIT,
    DATA_FRESHNESS,
    MAX_DRAWDOWN,
    MAX_GROSS_EXPOSURE,
    MAX_ORDER_NOTIONAL,
    MAX_ORDERS_PER_MINUTE,
    MAX_POSITION_NOTIONAL,
    NOTIONAL_CHECKS,
    PAUSED,
    TRADING_STATE,
    OpenOrderExposure,
    RiskCheck,
    RiskLimits,
    RiskSnapshot,
    RiskVerdict,
)
from autoquant.domain.values import OrderType, Side

__all__ = [
    "DAILY_LOSS_LIMIT",
    "DATA_FRESHNESS",
    "MAX_DRAWDOWN",
    "MAX_GROSS_EXPOSURE",
    "MAX_ORDERS_PER_MINUTE",
    "MAX_ORDER_NOTIONAL",
    "MAX_POSITION_NOTIONAL",
    "NOTIONAL_CHECKS",
    "PAUSED",
    "TRADING_STATE",
    "OpenOrderExposure",
    "RiskCheck",
    "RiskLimits",
    "RiskSnapshot",
    "RiskVerdict",
    "check",
    "is_reducing",
]

_ZERO = Decimal(0)
_MINUTE_NS = 60_000_000_000
_NS_PER_S = 1_000_000_000
_NO_PRICE = "no last price for"

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


def notional_basis(intent: OrderIntent, last: Decimal | None) -> Decimal | None:
    """The price an order's notional is counted at: its limit price (limit, stop-limit), else its
    stop price (a stop fills around it), else for a trailing stop its first stop (a buy's is the last
    price plus the trail, as the paper engine checks buying power; a sell's the last price), else the
    last price (market, notional)."""
    if intent.limit_price is not None:
        return intent.limit_price
    if intent.stop_price is not None:
        return intent.stop_price
    if last is not None and intent.side is _BUY and intent.order_type is OrderType.TRAILING_STOP:
        if intent.trail_price is not None:
            return last + intent.trail_price
        if intent.trail_percent is not None:
            return last + last * intent.trail_percent / 100
    return last


def intent_qty(intent: OrderIntent, last: Decimal | None) -> Decimal:
    """The shares an intent stands for: its qty, or a notional order's dollars at the last price
    (zero while there is no price: the price checks refuse it then)."""
    if intent.notional is None:
        return intent.qty
    return _ZERO if not last else intent.notional / last


def is_reducing(intent: OrderIntent, snapshot: RiskSnapshot) -> bool:
    """True when the order shrinks the account's absolute position and cannot take it past zero."""
    return _reduces(intent, intent_qty(intent, snapshot.last_prices.get(intent.symbol)), snapshot)


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
    intent: OrderIntent, qty: Decimal, snapshot: RiskSnapshot, limits: RiskLimits, book: Book
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
        who = "the account" if ACCOUNT in controls.paused else intent.strategy_id
        paused = _new(RiskCheck, (PAUSED, False, "{} is paused: {}", (who, pause)))

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
                "{} data age {:.3f} s, max {} s",
                (symbol, age / _NS_PER_S, max_age_s),
            ),
        )

    prices = snapshot.last_prices
    last = prices.get(symbol)
    price = notional_basis(intent, last)
    if price is None or last is None:
        no_price = (symbol,)
        order_check = _new(RiskCheck, (MAX_ORDER_NOTIONAL, False, _NO_PRICE + " {}", no_price))
        position_check = _new(RiskCheck, (MAX_POSITION_NOTIONAL, False, _NO_PRICE + " {}", no_price))
        gross_check = _new(RiskCheck, (MAX_GROSS_EXPOSURE, False, _NO_PRICE + " {}", no_price))
    else:
        # A notional order is counted at its own dollars, not at qty x price (which rounds).
        notional = qty * price if intent.notional is None else intent.notional
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
        gross, unpriced = gross_exposure(book, prices, symbol, own)
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


def _fitting_qty(intent: OrderIntent, snapshot: RiskSnapshot, limits: RiskLimits, book: Book) -> Decimal:
    """The largest quantity the three notional limits allow, before rounding (may be <= 0)."""
    symbol = intent.symbol
    last = snapshot.last_prices[symbol]
    price = notional_basis(intent, last)
    assert price is not None  # last is priced here
    pos = book.position.get(symbol, _ZERO)
    buys, sells = book.buys.get(symbol, _ZERO), book.sells.get(symbol, _ZERO)
    bound = limits.max_order_notional / price
    # position and gross bounds: this side's exposure grows linearly with qty
    this_side = pos + buys if intent.side is _BUY else sells - pos
    bound = min(bound, limits.max_position_notional / last - this_side)
    others, _ = gross_exposure(book, snapshot.last_prices, symbol, _ZERO)  # all priced, or no resize
    room = limits.max_gross_exposure - others
    other_side = abs(pos - sells) if intent.side is _BUY else abs(pos + buys)
    if other_side * last > room:
        return _ZERO
    return min(bound, room / last - this_side)


def check(intent: OrderIntent, snapshot: RiskSnapshot, limits: RiskLimits) -> RiskVerdict:
    """Run every check on ``intent``; see the module docstring for the exact rules."""
    book = book_of(snapshot)
    checks = _run(intent, intent_qty(intent, snapshot.last_prices.get(intent.symbol)), snapshot, limits, book)
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
    resizable = limits.resize and intent.notional is None  # a dollar amount is not resized in shares
    if not resizable or not failed <= NOTIONAL_CHECKS or _price_missing(checks):
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
