"""The cash check: did the broker's cash move since the last run by what the fills explain?

The ledger keeps the broker's cash at the last reconciliation (``CashBaseline``); the broker's cash
now, less that, must be the sum of the fills' cash effects in between. Fills near either boundary may
or may not be in the cash the broker reported (clocks differ, reads are not atomic), so any subset of
those is accepted, and with more than ``MAX_AMBIGUOUS_FILLS`` of them the check is inconclusive
rather than guessed. A difference no subset explains is a ``cash_mismatch`` incident.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from autoquant.domain.broker import BrokerAccount
from autoquant.domain.controls import ACCOUNT
from autoquant.domain.fills import Fill
from autoquant.domain.reconciliation_models import CashBaseline, IncidentDraft

_ZERO = Decimal(0)

#: More fills than this near a cash boundary and the cash check is inconclusive rather than guessed.
MAX_AMBIGUOUS_FILLS = 10


def fill_time_ns(fill: Fill) -> int:
    """When the execution happened: the broker's time if it gave one, else when we received it."""
    return fill.broker_ts_ns if fill.broker_ts_ns is not None else fill.local_ts_ns


def cash_effect(fill: Fill) -> Decimal:
    """How the fill moves cash: a buy pays its notional, a sell receives it, both pay the fee."""
    return -(fill.signed_qty * fill.price) - fill.fee


def check_cash(
    baseline: CashBaseline | None, account: BrokerAccount | None, as_of_ns: int, reported: Iterable[Fill]
) -> tuple[str, IncidentDraft | None]:
    """``"ok"``, ``"mismatch"`` (with its incident), ``"inconclusive"``, or ``"skipped"`` without a
    baseline or an account. ``reported`` are the broker's fills the ledger lacks, counted with the
    baseline's own; ``as_of_ns`` is when the account was read."""
    if baseline is None or account is None:
        return "skipped", None
    start, end, slack = baseline.at_ns, as_of_ns, baseline.slack_ns
    fills: dict[str, Fill] = {}
    for fill in (*baseline.fills, *reported):
        fills.setdefault(fill.execution_id, fill)
    certain = _ZERO
    ambiguous: list[Decimal] = []
    for fill in fills.values():
        at = fill_time_ns(fill)
        if start + slack < at <= end - slack:
            certain += cash_effect(fill)
        elif start - slack < at <= end + slack:
            ambiguous.append(cash_effect(fill))
    if len(ambiguous) > MAX_AMBIGUOUS_FILLS:
        return "inconclusive", None
    moved = account.cash - baseline.cash
    possible = {certain}
    for effect in ambiguous:
        possible |= {total + effect for total in possible}
    if moved in possible:
        return "ok", None
    nearest = min(possible, key=lambda total: abs(moved - total))
    return "mismatch", IncidentDraft(
        kind="cash_mismatch",
        subject="cash",
        scope=ACCOUNT,
        message=(
            f"the broker's cash moved by {moved} since the last reconciliation; the fills recorded "
            f"since then explain {nearest}"
        ),
        action=(
            f"look for a deposit, withdrawal, fee or fill of {moved - nearest} in the broker's account "
            "activities; record or correct it, then "
            '`autoquant resolve ID --note "…"` and `autoquant resume --reason "…"`'
        ),
        details={
            "cash_before": str(baseline.cash),
            "cash_now": str(account.cash),
            "moved": str(moved),
            "explained": str(nearest),
            "unexplained": str(moved - nearest),
            "since_ns": start,
        },
    )
