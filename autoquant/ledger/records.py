"""Ledger rows that have no home in the domain: incidents, risk events, reconciliation runs and
cursors, cancel requests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from autoquant.domain.risk_models import RiskCheck


class Incident(BaseModel):
    """Something the daemon could not explain. ``action`` tells the operator what to do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_id: str
    kind: str
    subject: str
    scope: str
    message: str
    action: str
    details: dict[str, Any] = {}
    local_ts_ns: int
    resolved: bool = False
    resolved_by: str | None = None
    resolution_note: str | None = None
    resolved_ns: int | None = None


class RiskEvent(BaseModel):
    """One run of the risk gate: every check's result, whether it allowed the order, and why not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision_id: str | None
    client_order_id: str | None
    strategy_id: str
    symbol: str
    stage: str  # "decision" or "submit"
    allowed: bool
    reason: str | None
    #: Each check's result, as the gate's ``RiskCheck`` or its ``as_dict()`` shape; a ``RiskCheck``'s
    #: detail text is formatted when the event is written, on the writer thread, not on the way to
    #: the submit.
    checks: Sequence[RiskCheck | dict[str, Any]]
    local_ts_ns: int

    def checks_json(self) -> str:
        """The checks as the ledger stores them: a JSON list of ``name``, ``passed``, ``detail``."""
        return json.dumps([c.as_dict() if isinstance(c, RiskCheck) else c for c in self.checks], default=str)


class ReconciliationRun(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    trigger: str
    clean: bool
    summary: dict[str, Any]
    started_ns: int
    finished_ns: int


class ReconciliationCursor(BaseModel):
    """Where a reconciliation run left off: the account's cash read at ``cash_at_ns``, and the last
    ledger fill (``fills.seq``) appended before that read. Stored in the run's own transaction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_seq: int = 0
    fills_seq: int
    cash: Decimal
    cash_at_ns: int


@dataclass(frozen=True)
class CancelRequest:
    seq: int
    target: str
    reason: str
    actor: str
    local_ts_ns: int


@dataclass(frozen=True)
class BrokerRequest:
    """An operator's request the daemon carries out at the broker: a replace or a flatten."""

    seq: int
    kind: str
    target: str
    params: dict[str, str]
    reason: str
    actor: str
    local_ts_ns: int
