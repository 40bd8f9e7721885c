"""The one way a worker reports what it cannot explain: an incident in the ledger, a log line, a wake-up.

Every worker that meets something it must not guess at (an update for an order this ledger never
reserved, an illegal transition, an unreadable payload, a gap in market data) hands it to the
``IncidentReporter``. The ledger keeps one open incident per kind and subject; a new one is logged and
wakes the reconciler, which looks at the account at once instead of at its next interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog

from autoquant.domain.clock import Clock
from autoquant.domain.controls import ACCOUNT
from autoquant.domain.orders import OrderEvent
from autoquant.ledger import Ledger

log = structlog.get_logger("autoquant.incidents")

#: What the operator is told to do unless the reporter says otherwise.
RECONCILE_ACTION = "run `autoquant reconcile`, then check `autoquant incidents`"


class IncidentReporter:
    def __init__(self, ledger: Ledger, clock: Clock, *, reconcile_wake: asyncio.Event | None = None) -> None:
        self.ledger = ledger
        self.clock = clock
        #: Set when a new incident is opened (the reconciliation worker waits on it).
        self.reconcile_wake = reconcile_wake or asyncio.Event()

    async def report(
        self,
        kind: str,
        subject: str,
        message: str,
        details: Mapping[str, object],
        *,
        scope: str = ACCOUNT,
        action: str = RECONCILE_ACTION,
        reconcile: bool = True,
    ) -> str:
        """Open (or find still open) the incident ``kind``/``subject``; returns its id."""
        incident_id, _ = await self.open(
            kind, subject, message, details, scope=scope, action=action, reconcile=reconcile
        )
        return incident_id

    async def open(
        self,
        kind: str,
        subject: str,
        message: str,
        details: Mapping[str, object],
        *,
        scope: str = ACCOUNT,
        action: str = RECONCILE_ACTION,
        reconcile: bool = True,
    ) -> tuple[str, bool]:
        """``report``, also saying whether the incident is new (the reconciler pauses on new ones)."""
        incident_id, new = await self.ledger.open_incident(
            kind=kind,
            subject=subject,
            scope=scope,
            message=message,
            action=action,
            details=dict(details),
            local_ts_ns=self.clock.now_ns(),
        )
        if new:
            log.error("incident_opened", incident_id=incident_id, kind=kind, scope=scope, message=message)
            if reconcile:
                self.reconcile_wake.set()
        return incident_id, new

    async def illegal_transition(self, event: OrderEvent, message: str) -> str:
        """An order event the ledger refused: recorded as an incident, never applied or dropped."""
        log.error("order_event_refused", error=message, event_kind=event.kind.value)
        return await self.report(
            "illegal_transition",
            f"{event.client_order_id}:{event.kind.value}",
            message,
            {"client_order_id": event.client_order_id, "event": event.kind.value},
        )
