"""The strategy protocol: a strategy is a pure ``decide(state) -> Decision``.

The strategy worker assembles a ``StrategyState`` from the ledger (position and open orders of this
strategy in this symbol) and the market-data stream (recent bars, freshness), calls ``decide`` and
records the decision before anything acts on it. Holds are decisions too; their reason comes from
the fixed vocabulary in ``Reason`` so they can be counted and graphed by reason.

Strategies never see the account, other strategies or the risk limits: risk lives outside them.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from autoquant.domain.bars import Bar
from autoquant.domain.decisions import Action, Decision, OrderIntent
from autoquant.domain.ids import decision_id
from autoquant.domain.values import Identifier, Money, Side, Symbol, TimeInForce


class Reason(StrEnum):
    """Why a strategy did what it did. Small and fixed, so decisions can be counted by reason."""

    # holds
    WARMING_UP = "warming_up"
    NO_CROSS = "no_cross"
    STALE_DATA = "stale_data"
    ORDER_OPEN = "order_open"
    ALREADY_LONG = "already_long"
    NOT_FLAT = "not_flat"
    FLAT_NO_POSITION = "flat_no_position"
    # orders
    BULLISH_CROSS = "bullish_cross"
    BEARISH_CROSS = "bearish_cross"


class StrategyState(BaseModel):
    """Everything one strategy may look at for one decision on one bar.

    ``bars`` are this symbol's recent bars, oldest first and newest last; the newest is the bar being
    decided on, and its ``close_time`` is the decision's data time. ``position_qty`` is signed (long
    positive) and counts only this strategy's fills; ``open_order_qty`` is the remaining quantity of
    this strategy's open orders in this symbol, signed the same way (buys positive).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy_id: Identifier
    symbol: Symbol
    bars: tuple[Bar, ...] = Field(min_length=1)
    position_qty: Money = Decimal(0)
    open_order_count: int = Field(default=0, ge=0)
    open_order_qty: Money = Decimal(0)
    data_fresh: bool
    #: Nanoseconds between the newest bar's close and "now" when the state was assembled.
    data_age_ns: int = Field(ge=0)
    decision_id: str

    @model_validator(mode="after")
    def _bars_belong(self) -> StrategyState:
        previous = None
        for bar in self.bars:
            if bar.symbol != self.symbol:
                raise ValueError(f"bars: a {bar.symbol} bar in the state of a {self.symbol} strategy")
            if previous is not None and bar.close_time <= previous:
                raise ValueError("bars: close times must increase strictly, oldest first")
            previous = bar.close_time
        return self

    @property
    def bar(self) -> Bar:
        """The bar being decided on (the newest)."""
        return self.bars[-1]

    @classmethod
    def assemble(
        cls,
        *,
        strategy_id: str,
        symbol: str,
        bars: tuple[Bar, ...],
        position_qty: Decimal,
        open_order_count: int,
        open_order_qty: Decimal,
        now_ns: int,
        max_data_age_ns: int,
    ) -> StrategyState:
        """Build a state, deriving the decision id and freshness from the newest bar and ``now_ns``.

        Freshness is inclusive: a bar exactly ``max_data_age_ns`` old is still fresh.
        """
        if not bars:
            raise ValueError("bars: at least one bar is needed to decide")
        newest = bars[-1]
        age = max(0, now_ns - newest.close_ns)
        return cls(
            strategy_id=strategy_id,
            symbol=symbol,
            bars=bars,
            position_qty=position_qty,
            open_order_count=open_order_count,
            open_order_qty=open_order_qty,
            data_fresh=age <= max_data_age_ns,
            data_age_ns=age,
            decision_id=decision_id(strategy_id, symbol, newest.close_time),
        )


class Strategy(Protocol):
    """What the strategy worker needs of a strategy."""

    @property
    def id(self) -> str: ...

    @property
    def symbol(self) -> str: ...

    @property
    def warmup(self) -> int:
        """How many bars ``decide`` needs before it can do more than hold ``warming_up``."""
        ...

    def decide(self, state: StrategyState) -> Decision: ...


def time_in_force_for(symbol: str) -> TimeInForce:
    """Alpaca accepts only gtc/ioc for crypto (``BTC/USD``); stocks default to day orders."""
    return TimeInForce.GTC if "/" in symbol else TimeInForce.DAY


def hold(state: StrategyState, reason: Reason, inputs: dict[str, Any] | None = None) -> Decision:
    """A hold decision on the state's newest bar."""
    return Decision(
        decision_id=state.decision_id,
        strategy_id=state.strategy_id,
        symbol=state.symbol,
        action=Action.HOLD,
        reason=reason.value,
        data_time=state.bar.close_time,
        inputs=inputs or {},
    )


def order(
    state: StrategyState,
    side: Side,
    qty: Decimal,
    reason: Reason,
    inputs: dict[str, Any] | None = None,
) -> Decision:
    """A market-order decision on the state's newest bar, with its intent."""
    data_time = state.bar.close_time
    intent = OrderIntent(
        strategy_id=state.strategy_id,
        symbol=state.symbol,
        side=side,
        qty=qty,
        time_in_force=time_in_force_for(state.symbol),
        reason=reason.value,
        decision_id=state.decision_id,
        data_time=data_time,
    )
    return Decision(
        decision_id=state.decision_id,
        strategy_id=state.strategy_id,
        symbol=state.symbol,
        action=Action.BUY if side is Side.BUY else Action.SELL,
        reason=reason.value,
        data_time=data_time,
        inputs=inputs or {},
        intent=intent,
    )
