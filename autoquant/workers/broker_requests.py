"""Operator requests carried out at the broker: replace an order, flatten the account; and the adoption
of the orders such acts make at the broker without a reservation of ours.

**Replace** (``autoquant replace``): the replacement is reserved under its own deterministic client
order id (``ids.replacement_client_order_id``), on the old order's decision, in the transaction that
closes the request; only then does the execution worker send it, as ``PATCH /v2/orders/{id}`` with
that id (``ExecutionWorker._send``). So a replace reaches the broker at most once: after a timeout or a
restart the replacement is UNKNOWN or RESERVED, and the outbox resolves it by looking its id up, as it
does any order; not found after the grace, the replace is sent again under the same id (the broker
refuses a second order under it, and an old order already ended refuses the replace).

**Flatten** (``autoquant halt --flatten``, and the kill switch with ``[risk] flatten_on_trip``): one
``DELETE /v2/positions?cancel_orders=true``. The broker cancels the open orders (their ``canceled``
updates arrive as usual) and places a closing order per position under client order ids of its own.
Those are recorded here as they are answered; one that streams in first is adopted by the order-update
worker (``adopt_unknown``), and reconciliation adopts any it finds, so none becomes an orphan. A flatten
whose outcome is not known is not sent again: reconciliation adopts whatever it placed.

**Adoption** (``adopt_unknown``): a broker order the ledger never reserved is taken as the ledger's own
when it replaces an order the ledger knows (a replace done at the broker, outside the daemon), or when
it is a market order created while a flatten was under way. Anything else stays an incident.
"""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import ValidationError

from autoquant.brokers.port import Broker
from autoquant.domain.adoption import (
    closing_owner,
    closing_reservation,
    is_closing_order,
    replacement_reservation,
)
from autoquant.domain.broker import BrokerOrderState
from autoquant.domain.clock import Clock
from autoquant.domain.ids import replacement_client_order_id
from autoquant.domain.orders import Order
from autoquant.domain.values import OrderType
from autoquant.errors import BrokerAmbiguous, BrokerError, BrokerTransient
from autoquant.ledger import Ledger
from autoquant.ledger.records import BrokerRequest
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.incidents import IncidentReporter

log = structlog.get_logger("autoquant.execution")

#: How far a closing order's creation may fall outside its flatten (clocks, the broker's queue).
FLATTEN_MARGIN_NS = 60 * 1_000_000_000


async def adopt_unknown(
    ledger: Ledger, broker: Broker, state: BrokerOrderState, *, linked: bool = False
) -> Order | None:
    """Reserve ``state`` (an order the ledger never reserved) if it is a replacement of an order the
    ledger knows or a flatten's closing order; None (nothing written) if it is neither. ``linked``:
    ``state`` comes from a REST read, so its replace links are already there."""
    if not linked and state.replaces is None and state.replaced_by is None:
        # A stream payload may lack the links (the in-process paper exchange's does): ask for them.
        looked_up = await broker.get_by_client_order_id(state.client_order_id)
        state = looked_up or state
    order: Order | None = None
    if state.replaces is not None:
        replaced = await ledger.get_order_by_broker_id(state.replaces)
        if replaced is not None:
            order = replacement_reservation(state, replaced)
    elif is_closing_order(state) and await ledger.flatten_covers(state.created_ns, FLATTEN_MARGIN_NS):
        positions = {key: p.qty for key, p in (await ledger.positions()).items()}
        order = closing_reservation(state, closing_owner(state, positions))
    if order is None:
        return None
    if await ledger.reserve(order):
        log.info(
            "order_adopted_from_broker",
            client_order_id=order.client_order_id,
            broker_order_id=state.broker_order_id,
            replaces=order.replaces,
            strategy_id=order.strategy_id,
        )
    return await ledger.get_order(order.client_order_id)


def _trail(new: str | None, old: Order) -> dict[str, Any]:
    """A trailing stop's trail after a replace: ``new`` (the request's ``trail``, in the order's own
    unit) replaces whichever of ``trail_price`` and ``trail_percent`` the order has; None keeps both."""
    if new is None:
        return {"trail_price": old.trail_price, "trail_percent": old.trail_percent}
    if old.trail_percent is not None:
        return {"trail_price": None, "trail_percent": new}
    return {"trail_price": new, "trail_percent": None}


class BrokerRequests:
    """Carries out the pending replace and flatten requests, each once, on the execution worker's sweep."""

    def __init__(
        self,
        ledger: Ledger,
        broker: Broker,
        clock: Clock,
        execution: ExecutionWorker,
        incidents: IncidentReporter | None = None,
    ) -> None:
        self.ledger = ledger
        self.broker = broker
        self.clock = clock
        self.execution = execution
        self.incidents = incidents

    async def carry_out(self) -> int:
        done = 0
        for request in await self.ledger.pending_broker_requests():
            if request.kind == "replace":
                done += await self._replace(request)
            else:
                done += await self._flatten(request)
        return done

    async def _refuse(self, request: BrokerRequest, why: str) -> int:
        log.warning("broker_request_refused", kind=request.kind, target=request.target, reason=why)
        await self.ledger.record_request_outcome(request.seq, False, why, self.clock.now_ns())
        return 1

    async def _replace(self, request: BrokerRequest) -> int:
        old = await self.ledger.get_order(request.target)
        if old is None:
            return await self._refuse(request, f"no order {request.target} in the ledger")
        if old.status.is_terminal:
            return await self._refuse(request, f"order {old.client_order_id} is already {old.status.value}")
        if old.broker_order_id is None:
            return await self._refuse(
                request,
                f"order {old.client_order_id} is {old.status.value}: the broker has not acknowledged it",
            )
        if old.notional is not None:
            why = f"order {old.client_order_id} is notional, which cannot be replaced: cancel it instead"
            return await self._refuse(request, why)
        params = request.params
        if params.get("trail") is not None and old.order_type is not OrderType.TRAILING_STOP:
            kind = old.order_type.value
            why = f"order {old.client_order_id} is a {kind} order: only a trailing stop has a trail"
            return await self._refuse(request, why)
        now = self.clock.now_ns()
        try:
            new = Order.model_validate(
                {
                    "client_order_id": replacement_client_order_id(old.client_order_id, request.seq),
                    "decision_id": old.decision_id,
                    "strategy_id": old.strategy_id,
                    "symbol": old.symbol,
                    "side": old.side,
                    "qty": params.get("qty", old.qty),
                    "order_type": old.order_type,
                    "time_in_force": old.time_in_force,
                    "limit_price": params.get("limit_price", old.limit_price),
                    "stop_price": params.get("stop_price", old.stop_price),
                    **_trail(params.get("trail"), old),
                    "extended_hours": old.extended_hours,
                    "replaces": old.client_order_id,
                    "reason": f"replace: {request.reason} ({request.actor})",
                    "created_ns": now,
                    "updated_ns": now,
                }
            )
        except ValidationError as error:
            return await self._refuse(request, f"the new terms are not an order: {error.errors()[0]['msg']}")
        if await self.ledger.reserve_replacement(new, request.seq, now):
            log.info(
                "replacement_reserved", client_order_id=new.client_order_id, replaces=old.client_order_id
            )
            self.execution.submit_soon(new.client_order_id)
        return 1

    async def _flatten(self, request: BrokerRequest) -> int:
        log.warning("flatten_sending", reason=request.reason, actor=request.actor)
        try:
            result = await self.broker.close_all_positions(cancel_orders=True)
        except BrokerTransient as error:
            log.warning("flatten_deferred", error=str(error))
            return 0  # nothing reached the broker: the next sweep sends it
        except BrokerAmbiguous as error:
            # Not sent again: whatever it placed is adopted by the update stream and reconciliation.
            return await self._done(
                request, False, f"outcome not known ({error}); reconciliation adopts its orders"
            )
        except BrokerError as error:
            return await self._refuse(request, f"the broker refused it: {error}")
        adopted = []
        for state in result.orders:
            order = await adopt_unknown(self.ledger, self.broker, state, linked=True)
            if order is not None:
                await self.execution.adopt(order, state)
                adopted.append(order.client_order_id)
        failed = "; ".join(f"{symbol}: {why}" for symbol, why in sorted(result.failed.items()))
        detail = f"{len(adopted)} closing order(s): {', '.join(adopted) or 'none'}"
        return await self._done(
            request, not result.failed, detail + (f"; not closed: {failed}" if failed else "")
        )

    async def _done(self, request: BrokerRequest, ok: bool, detail: str) -> int:
        log.warning("flatten_done", ok=ok, detail=detail)
        await self.ledger.record_request_outcome(request.seq, ok, detail, self.clock.now_ns())
        if self.incidents is not None:
            # The cancels and the closes are checked against the broker at once.
            self.incidents.reconcile_wake.set()
        return 1
