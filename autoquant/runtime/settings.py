"""``[daemon]``: how the daemon process behaves."""

from __future__ import annotations

from pydantic import Field

from autoquant.domain.settings import Section


class DaemonSettings(Section):
    drain_timeout_s: float = Field(default=10.0, gt=0)
