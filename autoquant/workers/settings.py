"""``[risk]`` and ``[reconcile]``: the settings the workers run by."""

from __future__ import annotations

from pydantic import Field

from autoquant.domain.risk import RiskLimits
from autoquant.domain.settings import Section


class RiskSettings(RiskLimits):
    """``[risk]``: the account-level limits (``autoquant.domain.risk.RiskLimits`` documents each)."""


class ReconcileSettings(Section):
    interval_s: float = Field(default=30.0, gt=0)
    #: How long a reserved order that the broker does not know is given before it is sent again.
    resubmit_grace_s: float = Field(default=2.0, ge=0)
