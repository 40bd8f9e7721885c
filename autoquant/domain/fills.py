"""Fills: one execution at the broker, keyed by the broker's execution id."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from autoquant.domain.values import NonNegative, Price, Quantity, Side, Symbol


class Fill(BaseModel):
    """An execution. ``execution_id`` is its identity: the ledger counts each one exactly once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    execution_id: str
    client_order_id: str
    broker_order_id: str | None = None
    symbol: Symbol
    side: Side
    qty: Quantity
    price: Price
    fee: NonNegative = Decimal(0)
    broker_ts_ns: int | None = None
    local_ts_ns: int

    @property
    def signed_qty(self) -> Decimal:
        return self.qty * self.side.sign
