"""What ``autoquant resume`` weighs before it writes: the open incidents a resume would trade over.

Resuming while incidents are open is an operator's right, but not by accident: without ``--force`` the
resume is refused with the list of what is open (each with its id, kind and scope) and what to do;
with ``--force`` it goes ahead and says plainly which incidents it resumed over.
"""

from __future__ import annotations

from autoquant.domain.controls import ACCOUNT
from autoquant.ledger.records import Incident
from autoquant.operator.text import safe


def blocking(incidents: list[Incident], scope: str) -> list[Incident]:
    """The open incidents a resume of ``scope`` would trade over (all of them for the account)."""
    if scope == ACCOUNT:
        return incidents
    return [i for i in incidents if i.scope in (scope, ACCOUNT)]


def describe(incidents: list[Incident]) -> str:
    return "; ".join(f"{i.incident_id} ({i.kind}, {i.scope}): {safe(i.message)}" for i in incidents)


def refusal(incidents: list[Incident], scope: str) -> str:
    """The one-line refusal naming every open incident."""
    return (
        f"resume of {scope} refused: {len(incidents)} open incident(s): {describe(incidents)}; resolve them "
        "first (`autoquant resolve ID --note ...`), or pass --force to resume over them"
    )
