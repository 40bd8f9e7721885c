"""The ``Broker`` port: what execution and reconciliation need from any broker.

Every implementation raises the ``autoquant.errors.BrokerError`` family with these meanings:
``submit`` raises ``BrokerAmbiguous`` when the order may or may not have reached the broker (timeout,
5xx, dropped connection), ``DuplicateClientOrderId`` when the id is already known there,
``BrokerRejected`` for any other refusal, and ``BrokerTransient`` only when nothing can have changed;
``replace`` and ``close_all_positions`` raise the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from autoquant.domain.broker import (
    BrokerAccount,
    BrokerOrderState,
    BrokerPosition,
    FlattenResult,
    OrderRequest,
    OrderUpdate,
)
from autoquant.domain.fills import Fill


@runtime_checkable
class Broker(Protocol):
    async def submit(self, request: OrderRequest) -> BrokerOrderState:
        """Send one order; return the broker's state of it."""
        ...

    async def get_by_client_order_id(self, client_order_id: str) -> BrokerOrderState | None:
        """The order the broker holds under this client order id, or None."""
        ...

    async def list_orders(
        self, *, open_only: bool = True, since_ns: int | None = None
    ) -> list[BrokerOrderState]:
        """Open orders, or all orders created at or after ``since_ns``."""
        ...

    async def cancel(self, broker_order_id: str) -> None:
        """Request a cancel; the outcome arrives on the update stream. Unknown id: BrokerNotFound."""
        ...

    async def replace(self, broker_order_id: str, request: OrderRequest) -> BrokerOrderState:
        """Replace an open order by ``request`` (new terms, a new client order id); return the new
        order. Raises as ``submit`` does (``BrokerAmbiguous`` when the outcome is not known), and
        ``BrokerNotFound`` / ``BrokerRejected`` when the old order cannot be replaced."""
        ...

    async def close_all_positions(self, *, cancel_orders: bool = True) -> FlattenResult:
        """Cancel every open order (with ``cancel_orders``) and close every position by a market order
        the broker places itself. An outcome that is not known raises ``BrokerAmbiguous``."""
        ...

    async def positions(self) -> list[BrokerPosition]: ...

    async def account(self) -> BrokerAccount: ...

    async def fills(self, *, since_ns: int | None = None) -> list[Fill]:
        """Every execution at or after ``since_ns``, oldest first, each with its execution id."""
        ...

    def updates(self) -> AsyncIterator[OrderUpdate]:
        """Order updates (with fills) as they happen. Each new iterator is a new subscription;
        after a disconnect the iterator ends, and the caller reconciles and subscribes again."""
        ...

    async def close(self) -> None: ...
