"""The risk gate as it was before it was tuned for speed: plain and obviously right, kept as the oracle
``test_risk_reference`` compares ``autoquant.domain.risk.check`` against. Do not optimise this copy."""

from __future__ import annotations

from bisect import bisect_right
from decimal import ROUND_DOWN, Decimal
from typing import NamedTuple

from autoquant.domain.controls import ACCOUNT, TradingState
from autoquant.domain.decisions import OrderIntent
from autoquant.domain.risk import (
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
    RiskCheck,
    RiskLimits,
    RiskSnapshot,
    RiskVerdict,
)
from autoquant.domain.values import Side

_ZERO = Decimal(0)
_MINUTE_NS = 60_000_000_000
_NS_PER_S = 1_000_000_000
_NO_PRICE = "no last price for"


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
        who = "the account" if ACCOUNT in controls.paused else intent.strategy_id
        add(RiskCheck(PAUSED, False, "{} is paused: {}", (who, pause)))

    age = snapshot.data_age_ns.get(symbol)
    if age is None:
        add(RiskCheck(DATA_FRESHNESS, False, "no market data for {}", (symbol,)))
    else:
        add(
            RiskCheck(
                DATA_FRESHNESS,
                age <= limits.max_data_age_s * _NS_PER_S,
                "{} data age {:.3f} s, max {} s",
                (symbol, age / _NS_PER_S, limits.max_data_age_s),
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
