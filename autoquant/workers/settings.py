"""``[risk]`` and ``[reconcile]``: the settings the workers run by."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator

from autoquant.domain.risk import RiskLimits
from autoquant.domain.settings import Section


class RiskSettings(RiskLimits):
    """``[risk]``: the account-level limits (``autoquant.domain.risk.RiskLimits`` documents each)."""

    @field_validator(
        "max_order_notional",
        "max_position_notional",
        "max_gross_exposure",
        "daily_loss_limit",
        "max_drawdown",
    )
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        # A limit at or below zero trips at once (a loss limit of -2000 is "already lost"): refuse it.
        if value <= 0:
            raise ValueError(f'must be more than 0 (got {value}): a limit is an amount of money, e.g. "2000"')
        return value


class ReconcileSettings(Section):
    interval_s: float = Field(default=30.0, gt=0)
    #: How long a reserved order that the broker does not know is given before it is sent again.
    resubmit_grace_s: float = Field(default=2.0, ge=0)
