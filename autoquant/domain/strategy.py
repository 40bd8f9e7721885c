"""The strategy protocol: a strategy is a pure ``decide(state) -> Decision | Sequence[Decision]``.

A strategy declares its id, its symbols (one or several), its warm-up (how many bars per symbol it
needs) and, when it is loaded from config, a pydantic model of its parameters (``Params``). The
strategy worker assembles a ``StrategyState`` from the market-data stream (recent bars per symbol,
freshness) and the ledger (this strategy's positions and open orders per symbol), calls ``decide``
and records every decision before anything acts on it. Holds are decisions too.

A strategy says why in its own words: ``reason`` is any short string of its choosing (decisions are
counted by reason in metrics and reports); the domain keeps no strategy's vocabulary. It never sees
the account, the clock, other strategies or the risk limits: risk lives outside it. Intents may be
market, limit, stop or stop-limit orders with a time in force; venue rules (client-order-id length,
the time in force a crypto venue accepts) belong to the broker adapters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, InstanceOf, model_validator

from autoquant.domain.bars import Bar
from autoquant.domain.decisions import Action, Decision, OrderIntent
from autoquant.domain.ids import decision_id
from autoquant.domain.values import (
    Identifier,
    Money,
    OrderType,
    Side,
    Symbol,
    TimeInForce,
    UtcDatetime,
    from_ns,
)

#: A reason is the strategy's own word; short, so it can label a metric.
REASON_MAX = 64


class Holdings(BaseModel):
    """One strategy's stake in one symbol: its signed position and its open orders (buys positive)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position_qty: Money = Decimal(0)
    open_order_count: int = Field(default=0, ge=0)
    open_order_qty: Money = Decimal(0)


_NOTHING_HELD = Holdings()


class StrategyState(BaseModel):
    """Everything one strategy may look at for one decision at one bar time.

    ``bars[symbol]`` are that symbol's recent bars, oldest first; the newest of the first symbol's is
    the bar being decided on and its ``close_time`` is ``data_time``. ``holdings[symbol]`` counts only
    this strategy's fills and open orders. ``data_fresh`` is False if any symbol's newest bar is older
    than the freshness bound; ``data_age_ns`` is the oldest such age.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy_id: Identifier
    symbols: tuple[Symbol, ...] = Field(min_length=1)
    #: Bars are validated when they are made (and frozen): here only their type is checked, which
    #: spares re-running every bar's own checks at each decision (most of a state's cost).
    bars: Mapping[str, tuple[InstanceOf[Bar], ...]]
    holdings: Mapping[str, Holdings] = {}
    data_fresh: bool
    #: Nanoseconds between the stalest symbol's newest bar close and "now" when the state was assembled.
    data_age_ns: int = Field(ge=0)
    data_time: UtcDatetime

    @model_validator(mode="after")
    def _bars_belong(self) -> StrategyState:
        for symbol in self.symbols:
            bars = self.bars.get(symbol)
            if not bars:
                raise ValueError(f"bars: no {symbol} bar in the state of strategy {self.strategy_id}")
            previous = None
            for bar in bars:
                if bar.symbol != symbol:
                    raise ValueError(f"bars: a {bar.symbol} bar among the {symbol} bars")
                if previous is not None and bar.close_time <= previous:
                    raise ValueError("bars: close times must increase strictly, oldest first")
                previous = bar.close_time
        unknown = set(self.bars) - set(self.symbols)
        if unknown:
            raise ValueError(f"bars: {sorted(unknown)} are not symbols of strategy {self.strategy_id}")
        return self

    # -- the first (often only) symbol ----------------------------------------------------------

    @property
    def symbol(self) -> str:
        """The strategy's first symbol (its only one, for a one-symbol strategy)."""
        return self.symbols[0]

    @property
    def bar(self) -> Bar:
        """The newest bar of the first symbol."""
        return self.bars[self.symbols[0]][-1]

    @property
    def position_qty(self) -> Decimal:
        return self.held(self.symbols[0]).position_qty

    @property
    def open_order_count(self) -> int:
        return self.held(self.symbols[0]).open_order_count

    @property
    def open_order_qty(self) -> Decimal:
        return self.held(self.symbols[0]).open_order_qty

    # -- any symbol -----------------------------------------------------------------------------

    def held(self, symbol: str) -> Holdings:
        return self.holdings.get(symbol, _NOTHING_HELD)

    def closes(self, symbol: str | None = None) -> list[Decimal]:
        """The close prices of ``symbol`` (default: the first), oldest first."""
        return [bar.close for bar in self.bars[symbol or self.symbols[0]]]

    def decision_id(self, symbol: str | None = None) -> str:
        """The id of this state's decision on ``symbol``: one per strategy, symbol and bar time."""
        return decision_id(self.strategy_id, symbol or self.symbols[0], self.data_time)

    @classmethod
    def assemble(
        cls,
        *,
        strategy_id: str,
        bars: Mapping[str, tuple[Bar, ...]],
        holdings: Mapping[str, Holdings] | None = None,
        symbols: Sequence[str] | None = None,
        now_ns: int,
        max_data_age_ns: int,
    ) -> StrategyState:
        """Build a state; freshness from the newest bar of each symbol and ``now_ns`` (inclusive: a bar
        exactly ``max_data_age_ns`` old is still fresh), the data time from the first symbol's."""
        order = tuple(symbols) if symbols is not None else tuple(bars)
        if not order or any(not bars.get(symbol) for symbol in order):
            raise ValueError("bars: at least one bar per symbol is needed to decide")
        age = max(max(0, now_ns - bars[symbol][-1].close_ns) for symbol in order)
        return cls(
            strategy_id=strategy_id,
            symbols=order,
            bars=bars,
            holdings=holdings or {},
            data_fresh=age <= max_data_age_ns,
            data_age_ns=age,
            data_time=from_ns(bars[order[0]][-1].close_ns),
        )


class Strategy(Protocol):
    """What the strategy worker needs of a strategy."""

    @property
    def id(self) -> str: ...

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def warmup(self) -> int:
        """How many bars per symbol ``decide`` needs before it can do more than hold."""
        ...

    def decide(self, state: StrategyState) -> Decision | Sequence[Decision]: ...


def decisions_of(outcome: Decision | Sequence[Decision]) -> tuple[Decision, ...]:
    """``decide``'s answer as a tuple, whichever of the two shapes it came in."""
    return (outcome,) if isinstance(outcome, Decision) else tuple(outcome)


def _reason(reason: str) -> str:
    text = str(reason)
    if not text or len(text) > REASON_MAX:
        raise ValueError(f"reason must be 1 to {REASON_MAX} characters, got {text!r}")
    return text


def hold(
    state: StrategyState, reason: str, inputs: dict[str, Any] | None = None, *, symbol: str | None = None
) -> Decision:
    """A hold decision at the state's bar time, on ``symbol`` (default: the first)."""
    on = symbol or state.symbol
    return Decision(
        decision_id=state.decision_id(on),
        strategy_id=state.strategy_id,
        symbol=on,
        action=Action.HOLD,
        reason=_reason(reason),
        data_time=state.data_time,
        inputs=inputs or {},
    )


def order(
    state: StrategyState,
    side: Side,
    qty: Decimal | None,
    reason: str,
    inputs: dict[str, Any] | None = None,
    *,
    symbol: str | None = None,
    order_type: OrderType = OrderType.MARKET,
    limit_price: Decimal | None = None,
    stop_price: Decimal | None = None,
    time_in_force: TimeInForce = TimeInForce.DAY,
    notional: Decimal | None = None,
    trail_price: Decimal | None = None,
    trail_percent: Decimal | None = None,
    extended_hours: bool = False,
) -> Decision:
    """An order decision at the state's bar time on ``symbol`` (default: the first), with its intent.

    ``order_type`` with ``limit_price`` / ``stop_price`` as the type needs, ``trail_price`` or
    ``trail_percent`` for a trailing stop; ``qty=None`` with ``notional`` for a dollar amount (market,
    day); ``extended_hours`` for a limit order (day, gtc). The intent validates the combination.
    """
    on = symbol or state.symbol
    if on not in state.symbols:
        raise ValueError(f"symbol {on} is not one of strategy {state.strategy_id}'s symbols")
    why = _reason(reason)
    intent = OrderIntent(
        strategy_id=state.strategy_id,
        symbol=on,
        side=side,
        qty=Decimal(0) if qty is None else qty,
        order_type=order_type,
        time_in_force=time_in_force,
        limit_price=limit_price,
        stop_price=stop_price,
        notional=notional,
        trail_price=trail_price,
        trail_percent=trail_percent,
        extended_hours=extended_hours,
        reason=why,
        decision_id=state.decision_id(on),
        data_time=state.data_time,
    )
    return Decision(
        decision_id=intent.decision_id,
        strategy_id=state.strategy_id,
        symbol=on,
        action=Action.BUY if side is Side.BUY else Action.SELL,
        reason=why,
        data_time=state.data_time,
        inputs=inputs or {},
        intent=intent,
    )
