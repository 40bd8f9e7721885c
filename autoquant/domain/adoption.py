"""Adoption after a restore, as pure functions: which broker orders a restored ledger takes as its own.

A restored ledger is older than the broker's truth: orders this account sent after the backup are at
the broker but not in the ledger. Such an order is adopted when its client order id follows this
account's id scheme (``ids.follows_scheme``) and exactly one configured strategy trades its symbol (the
id's hash cannot be reversed, so the symbol is the only way to book it to a strategy). Its decision is
unknown: it is reserved without one. Anything else stays unexplained, an incident as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from autoquant.domain.broker import BrokerOrderState
from autoquant.domain.ids import follows_scheme
from autoquant.domain.orders import Order


def owner(state: BrokerOrderState, strategies_by_symbol: Mapping[str, Set[str]]) -> str | None:
    """The one strategy this order can be booked to, or None if it cannot be adopted."""
    if not follows_scheme(state.client_order_id):
        return None
    strategies = strategies_by_symbol.get(state.symbol, frozenset())
    return next(iter(strategies)) if len(strategies) == 1 else None


def adopted_reservation(state: BrokerOrderState, strategy_id: str) -> Order:
    """The reservation an adopted order gets: the broker's order terms, no decision, created when the
    broker created it (its state follows through the usual events)."""
    return Order(
        client_order_id=state.client_order_id,
        decision_id=None,
        strategy_id=strategy_id,
        symbol=state.symbol,
        side=state.side,
        qty=state.qty,
        order_type=state.order_type,
        time_in_force=state.time_in_force,
        limit_price=state.limit_price,
        created_ns=state.created_ns,
        updated_ns=state.created_ns,
    )
