"""Adoption, as pure functions: which broker orders the ledger takes as its own though it never
reserved them, and the reservation each gets.

Three kinds. After a restore (below). A replace done at the broker, outside the daemon: the new order
names the old one (``replaces``), so it takes the old order's decision and strategy. A closing order the
broker placed for a flatten (``DELETE /v2/positions``): booked to the strategy that holds the most of
that symbol on the side it closes.


A restored ledger is older than the broker's truth: orders this account sent after the backup are at
the broker but not in the ledger. Such an order is adopted when its client order id follows this
account's id scheme (``ids.follows_scheme``) and exactly one configured strategy trades its symbol (the
id's hash cannot be reversed, so the symbol is the only way to book it to a strategy). Its decision is
unknown: it is reserved without one. Anything else stays unexplained, an incident as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Decimal

from autoquant.domain.broker import BrokerOrderState
from autoquant.domain.ids import follows_scheme
from autoquant.domain.orders import Order
from autoquant.domain.values import OrderType

#: Strategy id a closing order is booked to when no strategy holds its symbol.
FLATTEN_STRATEGY = "operator"


def owner(state: BrokerOrderState, strategies_by_symbol: Mapping[str, Set[str]]) -> str | None:
    """The one strategy this order can be booked to, or None if it cannot be adopted."""
    if not follows_scheme(state.client_order_id):
        return None
    strategies = strategies_by_symbol.get(state.symbol, frozenset())
    return next(iter(strategies)) if len(strategies) == 1 else None


def adopted_reservation(state: BrokerOrderState, strategy_id: str) -> Order:
    """The reservation an adopted order gets: the broker's order terms, no decision, created when the
    broker created it (its state follows through the usual events). A notional order's qty is zero
    (the broker's qty of it is only what has filled); a trailing stop keeps its trail, not the stop
    price the broker moves with the high-water mark."""
    notional = state.notional is not None
    trailing = state.order_type is OrderType.TRAILING_STOP
    return Order(
        client_order_id=state.client_order_id,
        decision_id=None,
        strategy_id=strategy_id,
        symbol=state.symbol,
        side=state.side,
        qty=Decimal(0) if notional else state.qty,
        order_type=state.order_type,
        time_in_force=state.time_in_force,
        limit_price=state.limit_price,
        stop_price=None if trailing else state.stop_price,
        notional=state.notional,
        trail_price=state.trail_price,
        trail_percent=state.trail_percent,
        extended_hours=state.extended_hours,
        created_ns=state.created_ns,
        updated_ns=state.created_ns,
    )


def replacement_reservation(state: BrokerOrderState, replaced: Order) -> Order:
    """The reservation of ``state``, an order the broker made by replacing ``replaced``: the same
    decision and strategy, the broker's new terms."""
    return adopted_reservation(state, replaced.strategy_id).model_copy(
        update={
            "decision_id": replaced.decision_id,
            "replaces": replaced.client_order_id,
            "reason": f"replaced {replaced.client_order_id} at the broker",
        }
    )


def is_closing_order(state: BrokerOrderState) -> bool:
    """Whether ``state`` can be a closing order a flatten made: a market order, not one of our ids."""
    return state.order_type is OrderType.MARKET and not follows_scheme(state.client_order_id)


def closing_owner(state: BrokerOrderState, positions: Mapping[tuple[str, str], Decimal]) -> str:
    """The strategy a closing order is booked to: the one holding the most of its symbol on the side
    it closes (a sell closes a long); ``FLATTEN_STRATEGY`` when none does."""
    sign = -state.side.sign
    held = [
        (qty * sign, strategy)
        for (strategy, symbol), qty in positions.items()
        if symbol == state.symbol and qty * sign > 0
    ]
    return max(held)[1] if held else FLATTEN_STRATEGY


def closing_reservation(state: BrokerOrderState, strategy_id: str) -> Order:
    """The reservation of a closing order the broker placed for a flatten."""
    return adopted_reservation(state, strategy_id).model_copy(
        update={"reason": "flatten: closing order placed by the broker"}
    )
