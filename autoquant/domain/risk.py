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

Each check is one small function of the proposed order (``Proposal``: the intent with what the
snapshot says about its symbol, worked out once per call) and the limits, returning one ``RiskCheck``;
``run_checks`` calls them in the order above.

The gate's data (limits, snapshot, check results, check names) is in ``risk_models``, and the
exposure arithmetic in ``exposure``; this module holds the checks. The public names of
``risk_models`` are re-exported here, so ``from autoquant.domain.risk import RiskLimits`` keeps working.
"""

from __future__ import annotations

from bisect import bisect_right
from decimal import ROUND_DOWN, Decimal
from operator import itemgetter

from autoquant.domain.controls import ACCOUNT, TradingState
from autoquant.domain.decisions import OrderIntent
from autoquant.domain.exposure import ZERO, exposure_qty, gross_exposure
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
    "Proposal",
    "RiskCheck",
    "RiskLimits",
    "RiskSnapshot",
    "RiskVerdict",
    "check",
    "is_reducing",
]

_MINUTE_NS = 60_000_000_000
_NS_PER_S = 1_000_000_000
_NO_PRICE = "no last price for"
# Enum members as module names: ``Side.BUY`` goes through the enum's metaclass, three times the cost
# of a global, and the gate reads these on every call.
_BUY = Side.BUY
_HALTED = TradingState.HALTED
_REDUCING = TradingState.REDUCING
_TRAILING_STOP = OrderType.TRAILING_STOP


class Proposal:
    """One order as the checks see it: the intent at ``qty`` shares, with what the snapshot says about
    its symbol, worked out once per ``check`` call rather than once per check."""

    __slots__ = (
        "basis",
        "buying",
        "intent",
        "last",
        "open_buys",
        "open_sells",
        "position",
        "qty",
        "reducing",
        "snapshot",
    )

    def __init__(self, intent: OrderIntent, qty: Decimal, snapshot: RiskSnapshot) -> None:
        symbol = intent.symbol
        self.intent = intent
        self.qty = qty
        self.snapshot = snapshot
        self.buying = buying = intent.side is _BUY
        #: The account's position in the symbol and its open quantities per side, before this order.
        self.position = snapshot.positions.get(symbol, ZERO)
        self.open_buys = snapshot.open_buys.get(symbol, ZERO)
        self.open_sells = snapshot.open_sells.get(symbol, ZERO)
        #: The symbol's last price, and the price the order's notional is counted at (None: unpriced).
        self.last = snapshot.last_prices.get(symbol)
        self.basis = notional_basis(intent, self.last)
        same_side_open = self.open_buys if buying else self.open_sells
        self.reducing = _reduces(self.position, buying, qty + same_side_open)

    def position_after(self) -> Decimal:
        """The position on the order's side once it and its side's open orders fill."""
        if self.buying:
            return self.position + self.open_buys + self.qty
        return self.position - self.open_sells - self.qty

    def exposure_after(self) -> Decimal:
        """The symbol's exposure quantity with the order added to its side (see ``exposure``)."""
        if self.buying:
            return exposure_qty(self.position, self.open_buys + self.qty, self.open_sells)
        return exposure_qty(self.position, self.open_buys, self.open_sells + self.qty)


def _reduces(position: Decimal, buying: bool, qty: Decimal) -> bool:
    """Opposite the position, and ``qty`` (the order with its side's open orders) not past zero."""
    opposite = position < 0 if buying else position > 0
    return opposite and qty <= abs(position)


def _result(name: str, passed: bool, template: str, values: tuple[object, ...] = ()) -> RiskCheck:
    """A ``RiskCheck``, built without the NamedTuple's Python-level ``__new__`` (twice its cost, and
    the gate builds nine per call, twice per order)."""
    built: RiskCheck = _tuple_new(RiskCheck, (name, passed, template, values))
    return built


_tuple_new = tuple.__new__
_PASSED = itemgetter(1)  # RiskCheck.passed, as a C function for ``map``


def notional_basis(intent: OrderIntent, last: Decimal | None) -> Decimal | None:
    """The price an order's notional is counted at: its limit price (limit, stop-limit), else its
    stop price (a stop fills around it), else for a trailing stop its first stop (a buy's is the last
    price plus the trail, as the paper engine checks buying power; a sell's the last price), else the
    last price (market, notional)."""
    if intent.limit_price is not None:
        return intent.limit_price
    if intent.stop_price is not None:
        return intent.stop_price
    if last is not None and intent.order_type is _TRAILING_STOP and intent.side is _BUY:
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
    return ZERO if not last else intent.notional / last


def is_reducing(intent: OrderIntent, snapshot: RiskSnapshot) -> bool:
    """True when the order shrinks the account's absolute position and cannot take it past zero."""
    qty = intent_qty(intent, snapshot.last_prices.get(intent.symbol))
    return Proposal(intent, qty, snapshot).reducing


# -- the checks, in the order they run -------------------------------------------------------------


def trading_state(order: Proposal, limits: RiskLimits) -> RiskCheck:
    """HALTED refuses everything; REDUCING refuses what does not reduce."""
    controls = order.snapshot.controls
    state = controls.trading_state
    if state is _HALTED:
        return _result(TRADING_STATE, False, "trading is halted: {}", (controls.state_reason,))
    if state is _REDUCING and not order.reducing:
        what = (order.intent.side, order.qty, order.intent.symbol)
        return _result(TRADING_STATE, False, "trading is reducing; {} {} {} adds exposure", what)
    # The state itself, not its ``.value`` (a Python-level property): a StrEnum formats as its value.
    return _result(TRADING_STATE, True, "trading is {}", (state,))


def paused(order: Proposal, limits: RiskLimits) -> RiskCheck:
    """An account pause, or a pause of the order's strategy, refuses the order."""
    controls = order.snapshot.controls
    reason = controls.pause_reason(order.intent.strategy_id) if controls.paused else None
    if reason is None:
        return _result(PAUSED, True, "not paused")
    who = "the account" if ACCOUNT in controls.paused else order.intent.strategy_id
    return _result(PAUSED, False, "{} is paused: {}", (who, reason))


def data_freshness(order: Proposal, limits: RiskLimits) -> RiskCheck:
    """The symbol's newest bar is at most ``max_data_age_s`` old."""
    symbol = order.intent.symbol
    age_ns = order.snapshot.data_age_ns.get(symbol)
    if age_ns is None:
        return _result(DATA_FRESHNESS, False, "no market data for {}", (symbol,))
    max_age_s = limits.max_data_age_s
    return _result(
        DATA_FRESHNESS,
        age_ns <= max_age_s * _NS_PER_S,
        "{} data age {:.3f} s, max {} s",
        (symbol, age_ns / _NS_PER_S, max_age_s),
    )


def order_notional(order: Proposal, limits: RiskLimits) -> RiskCheck:
    """The order's own dollars: qty times its basis, or a notional order's amount (not re-rounded)."""
    if order.basis is None or order.last is None:
        return _unpriced(MAX_ORDER_NOTIONAL, order)
    notional = order.qty * order.basis if order.intent.notional is None else order.intent.notional
    return _result(
        MAX_ORDER_NOTIONAL,
        notional <= limits.max_order_notional,
        "order notional {} (qty {} x {}), max {}",
        (notional, order.qty, order.basis, limits.max_order_notional),
    )


def position_notional(order: Proposal, limits: RiskLimits) -> RiskCheck:
    """The symbol's position after the order and its side's open orders, at the last price."""
    if order.basis is None or order.last is None:
        return _unpriced(MAX_POSITION_NOTIONAL, order)
    after = order.position_after()
    notional = abs(after) * order.last
    return _result(
        MAX_POSITION_NOTIONAL,
        order.reducing or notional <= limits.max_position_notional,
        "{} position after order with open orders {} x {} = {}, max {}",
        (order.intent.symbol, after, order.last, notional, limits.max_position_notional),
    )


def gross(order: Proposal, limits: RiskLimits) -> RiskCheck:
    """Every symbol's exposure at its last price, the order's symbol with the order added."""
    if order.basis is None or order.last is None:
        return _unpriced(MAX_GROSS_EXPOSURE, order)
    own = order.exposure_after() * order.last
    total, unpriced = gross_exposure(order.snapshot, order.intent.symbol, own)
    if unpriced is not None:
        return _result(MAX_GROSS_EXPOSURE, False, _NO_PRICE + " {}, held or ordered", (unpriced,))
    return _result(
        MAX_GROSS_EXPOSURE,
        order.reducing or total <= limits.max_gross_exposure,
        "gross exposure after order {}, max {}",
        (total, limits.max_gross_exposure),
    )


def daily_loss(order: Proposal, limits: RiskLimits) -> RiskCheck:
    """Today's loss within the limit, or the order reduces."""
    pnl = order.snapshot.equity - order.snapshot.start_equity
    return _result(
        DAILY_LOSS_LIMIT,
        order.reducing or -pnl <= limits.daily_loss_limit,
        "today's P&L {}, loss limit {}",
        (pnl, limits.daily_loss_limit),
    )


def drawdown(order: Proposal, limits: RiskLimits) -> RiskCheck:
    """The fall from the day's peak equity within the limit, or the order reduces."""
    peak = order.snapshot.peak_equity
    fall = peak - order.snapshot.equity
    return _result(
        MAX_DRAWDOWN,
        order.reducing or fall <= limits.max_drawdown,
        "drawdown {} from peak {}, max {}",
        (fall, peak, limits.max_drawdown),
    )


def order_rate(order: Proposal, limits: RiskLimits) -> RiskCheck:
    """Orders sent in the minute up to now, this one included."""
    snapshot = order.snapshot
    recent = snapshot.recent_order_ns
    count = 1 + len(recent) - bisect_right(recent, snapshot.now_ns - _MINUTE_NS)
    return _result(
        MAX_ORDERS_PER_MINUTE,
        count <= limits.max_orders_per_minute,
        "{} orders in the last minute with this one, max {}",
        (count, limits.max_orders_per_minute),
    )


def _unpriced(name: str, order: Proposal) -> RiskCheck:
    return _result(name, False, _NO_PRICE + " {}", (order.intent.symbol,))


def run_checks(order: Proposal, limits: RiskLimits) -> tuple[RiskCheck, ...]:
    """Every check, in the documented order (the first failure is the verdict's reason)."""
    return (
        trading_state(order, limits),
        paused(order, limits),
        data_freshness(order, limits),
        order_notional(order, limits),
        position_notional(order, limits),
        gross(order, limits),
        daily_loss(order, limits),
        drawdown(order, limits),
        order_rate(order, limits),
    )


# -- the verdict -----------------------------------------------------------------------------------


def check(intent: OrderIntent, snapshot: RiskSnapshot, limits: RiskLimits) -> RiskVerdict:
    """Run every check on ``intent``; see the module docstring for the exact rules."""
    order = Proposal(intent, intent_qty(intent, snapshot.last_prices.get(intent.symbol)), snapshot)
    checks = run_checks(order, limits)
    if all(map(_PASSED, checks)):  # the common case, without building the list of failures
        # Built as ``_result`` builds a check, without the NamedTuple's Python-level ``__new__``.
        return _tuple_new(RiskVerdict, (True, checks, "all checks passed", None))
    failed = [c for c in checks if not c.passed]
    reason = f"{failed[0].name}: {failed[0].detail}"
    if not _resizable(intent, failed, limits):
        return RiskVerdict(False, checks, reason)
    resized = _resized_qty(order, limits)
    if resized is None:
        return RiskVerdict(False, checks, f"{reason}; no smaller qty fits")
    return RiskVerdict(True, checks, f"resized from {intent.qty} to {resized}: {reason}", resized)


def _resizable(intent: OrderIntent, failed: list[RiskCheck], limits: RiskLimits) -> bool:
    """Only the notional checks failed, all priced, and the order is in shares (a dollar amount is
    not resized in shares) with resizing on."""
    return (
        limits.resize
        and intent.notional is None
        and all(c.name in NOTIONAL_CHECKS and not c.detail.startswith(_NO_PRICE) for c in failed)
    )


def _resized_qty(order: Proposal, limits: RiskLimits) -> Decimal | None:
    """The largest qty under the order's, in steps of its last digit, that passes every check."""
    qty = order.intent.qty
    exponent = qty.as_tuple().exponent
    step = Decimal(1).scaleb(min(exponent, 0)) if isinstance(exponent, int) else Decimal(1)
    fitted = _fitting_qty(order, limits)
    resized = fitted.quantize(step, rounding=ROUND_DOWN) if fitted > 0 else ZERO
    if resized <= 0 or resized >= qty:
        return None
    smaller = Proposal(order.intent, resized, order.snapshot)
    if not all(c.passed for c in run_checks(smaller, limits)):
        return None
    return resized


def _fitting_qty(order: Proposal, limits: RiskLimits) -> Decimal:
    """The largest quantity the three notional limits allow, before rounding (may be <= 0)."""
    last, basis, position = order.last, order.basis, order.position
    assert last is not None and basis is not None  # only priced orders are resized
    buys, sells = order.open_buys, order.open_sells
    bound = limits.max_order_notional / basis
    # position and gross bounds: this side's exposure grows linearly with qty
    this_side = position + buys if order.buying else sells - position
    bound = min(bound, limits.max_position_notional / last - this_side)
    others, _ = gross_exposure(order.snapshot, order.intent.symbol, ZERO)
    room = limits.max_gross_exposure - others
    other_side = abs(position - sells) if order.buying else abs(position + buys)
    if other_side * last > room:
        return ZERO
    return min(bound, room / last - this_side)
