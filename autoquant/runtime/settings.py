"""``[daemon]``: how the daemon process behaves."""

from __future__ import annotations

from pydantic import Field

from autoquant.domain.settings import Section


class DaemonSettings(Section):
    drain_timeout_s: float = Field(default=10.0, gt=0)
    #: How long the broker may be unreachable (REST or the order-update stream) before `status` calls the
    #: daemon unhealthy: long enough to ride out a reconnect, short enough to tell within half a minute.
    broker_unreachable_s: float = Field(default=15.0, gt=0, le=30)
