"""Manual orders: an operator's requests (``POST /api/v1/orders/submit``, written by another process) are
reserved here, in the daemon, under their client order id, and handed to the execution worker — the
reserve → pre-submit risk check → submit path every order takes. The reservation's UNIQUE client order
id makes a request carried out twice (a restart between reserve and hand-over) one order: a reserved
order left behind is the outbox's to resolve, by lookup first, like any other."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from autoquant.domain.clock import Clock
from autoquant.domain.orders import Order
from autoquant.domain.values import OrderType, Side, TimeInForce
from autoquant.ledger import Ledger
from autoquant.workers.execution import ExecutionWorker

log = structlog.get_logger("autoquant.manual")

#: How often pending requests are looked for (one indexed read).
POLL_S = 0.5


class ManualOrders:
    def __init__(
        self,
        ledger: Ledger,
        execution: ExecutionWorker,
        clock: Clock,
        heartbeat: Callable[[], None] = lambda: None,
    ) -> None:
        self.ledger = ledger
        self.execution = execution
        self.clock = clock
        self.heartbeat = heartbeat
        self._unplaceable: set[str] = set()

    async def run(self) -> None:
        while True:
            self.heartbeat()
            await self.carry_out()
            await self.clock.sleep(POLL_S)  # a polling period

    async def carry_out(self) -> int:
        placed = 0
        for request in await self.ledger.pending_manual_orders():
            if request.client_order_id in self._unplaceable:
                continue
            now = self.clock.now_ns()
            try:
                order = Order(
                    client_order_id=request.client_order_id,
                    strategy_id=request.strategy_id,
                    symbol=request.symbol,
                    side=Side(request.side),
                    qty=request.qty,
                    order_type=OrderType(request.order_type),
                    time_in_force=TimeInForce(request.time_in_force),
                    limit_price=request.limit_price,
                    stop_price=request.stop_price,
                    notional=request.notional,
                    trail_price=request.trail_price,
                    trail_percent=request.trail_percent,
                    extended_hours=request.extended_hours,
                    reason=f"manual: {request.reason} ({request.actor})",
                    created_ns=now,
                    updated_ns=now,
                )
            except ValueError as error:
                # The command layer checks the same rules before recording a request, so only a request
                # written by something else lands here: said once, never reserved, the worker goes on.
                self._unplaceable.add(request.client_order_id)
                log.error(
                    "manual_order_unplaceable", client_order_id=request.client_order_id, error=str(error)
                )
                continue
            if await self.ledger.reserve(order):
                log.info("manual_order_reserved", client_order_id=order.client_order_id, actor=request.actor)
                self.execution.submit_soon(order.client_order_id)
                placed += 1
        return placed
