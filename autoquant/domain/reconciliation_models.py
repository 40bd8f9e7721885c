"""What reconciliation compares and what it returns: the ledger's view, the broker's report, the result.

The comparison itself is ``autoquant.domain.reconciliation.diff``; the workers that gather a view and
a report, and append a result, need only these models.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from autoquant.domain.broker import BrokerAccount, BrokerOrderState, BrokerPosition
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order, OrderEvent
from autoquant.domain.values import Money


class CashBaseline(BaseModel):
    """The broker's cash at the last run, and the ledger's fills that may have moved it since.

    ``fills`` holds every ledger fill whose time is after ``at_ns - slack_ns``; fills within ``slack_ns``
    of either boundary may or may not be in the cash the broker reported (clocks differ, reads are not
    atomic), so the check accepts any subset of those and refuses to guess when there are too many.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cash: Money
    at_ns: int
    fills: tuple[Fill, ...] = ()
    slack_ns: int = 2_000_000_000


class LedgerView(BaseModel):
    """What the ledger holds that the broker's report is compared with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    open_orders: tuple[Order, ...]
    #: Other ledger orders the broker's report mentions (closed here, perhaps not at the broker).
    known_orders: dict[str, Order] = {}
    #: The execution ids, among those the broker reported, that the ledger already has.
    execution_ids: frozenset[str] = frozenset()
    #: Account-level quantity per symbol, summed over strategies, read in the same snapshot as
    #: ``execution_ids`` and ``later_fills``.
    positions: dict[str, Money] = {}
    #: The ledger's fills appended after the broker was first asked (its fill cursor before the broker
    #: reads), all of them, in the same snapshot: ``positions`` includes them, and those the broker's
    #: report does not list landed after the broker's reads, so the comparison takes them out again.
    later_fills: tuple[Fill, ...] = ()
    #: The strategies configured to trade each symbol.
    strategies_by_symbol: dict[str, frozenset[str]] = {}
    cash: CashBaseline | None = None

    def order(self, client_order_id: str) -> Order | None:
        for order in self.open_orders:
            if order.client_order_id == client_order_id:
                return order
        return self.known_orders.get(client_order_id)


class BrokerReport(BaseModel):
    """What the broker said, gathered at ``as_of_ns`` (local time, when the account was read)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    open_orders: tuple[BrokerOrderState, ...] = ()
    #: The broker's state of each ledger-open order by client order id; None = the broker has no such order.
    order_states: dict[str, BrokerOrderState | None] = {}
    #: Every execution since the window start, each with its execution id.
    fills: tuple[Fill, ...] = ()
    positions: tuple[BrokerPosition, ...] = ()
    #: Symbols whose fills kept changing while the positions were read (a remote broker asked several
    #: times): their positions cannot be judged against ``fills`` in this run; the next run does.
    unsettled_symbols: frozenset[str] = frozenset()
    account: BrokerAccount | None = None
    as_of_ns: int


class IncidentDraft(BaseModel):
    """An incident to open: what is wrong, whom it stops, and what the operator should do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    subject: str
    scope: str
    message: str
    action: str
    details: dict[str, Any] = {}


class ReconciliationResult(BaseModel):
    """What ``diff`` found: the repairs to append, the incidents to open, and how the cash check came out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fills_to_append: tuple[Fill, ...] = ()
    events_to_apply: tuple[OrderEvent, ...] = ()
    incidents: tuple[IncidentDraft, ...] = ()
    #: "ok", "mismatch", "inconclusive" or "skipped" (no baseline or no account).
    cash_check: str = "skipped"

    @property
    def clean(self) -> bool:
        return not self.incidents

    @property
    def has_work(self) -> bool:
        return bool(self.fills_to_append or self.events_to_apply or self.incidents)
