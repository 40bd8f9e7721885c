"""The order-update worker: the consumer of the broker's order-update stream.

Order updates and fills from the stream are appended in whatever order they arrive; the ledger counts a
fill once by its execution id. An update for an order this ledger never reserved is adopted when it is a
replace done at the broker or a flatten's closing order (``broker_requests.adopt_unknown``); any other,
or one that cannot be read, is recorded as an incident rather than guessed at. When the stream ends (a
disconnect) the consumer asks for a reconciliation and subscribes again, with jittered backoff. It shares
nothing with the execution worker but the ledger: its counters are its own, its incidents go through the
reporter.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from autoquant.brokers.port import Broker
from autoquant.domain.broker import OrderUpdate
from autoquant.domain.clock import Clock
from autoquant.domain.orders import OrderEvent, OrderEventKind, OrderStatus
from autoquant.errors import BrokerError, BrokerPayloadInvalid
from autoquant.ledger import Ledger
from autoquant.workers.adoption import event_for_state, event_for_update
from autoquant.workers.broker_requests import adopt_unknown
from autoquant.workers.crashpoints import crashpoint
from autoquant.workers.incidents import IncidentReporter
from autoquant.workers.reachability import BrokerReachability

# The execution worker's logger: the stream's events have always been logged under it.
log = structlog.get_logger("autoquant.execution")


@dataclass
class OrderStreamStats:
    updates: int = 0
    duplicate_fills: int = 0
    stream_restarts: int = 0


class OrderStream:
    """Applies the broker's order updates to the ledger, resubscribing after every disconnect."""

    def __init__(
        self,
        ledger: Ledger,
        broker: Broker,
        clock: Clock,
        incidents: IncidentReporter,
        *,
        heartbeat: Callable[[], None] = lambda: None,
        reachability: BrokerReachability | None = None,
    ) -> None:
        self.ledger = ledger
        self.reachability = reachability
        self.broker = broker
        self.clock = clock
        self.incidents = incidents
        self.heartbeat = heartbeat
        self.stats = OrderStreamStats()
        #: True while a confirmed subscription is open and the worker waits on it for the next update
        #: (a quiet stream: the supervisor counts its heartbeat as now).
        self.listening = False

    async def handle_update(self, update: OrderUpdate) -> None:
        self.stats.updates += 1
        coid = update.order.client_order_id
        order = await self.ledger.get_order(coid)
        if order is None:
            # A replace done at the broker, or a flatten's closing order: the ledger's own after all.
            order = await adopt_unknown(self.ledger, self.broker, update.order)
        if order is None:
            log.error(
                "update_for_unknown_order", client_order_id=coid, broker_order_id=update.order.broker_order_id
            )
            await self.incidents.report(
                "unknown_order",
                update.order.broker_order_id,
                f"the broker reports order {update.order.broker_order_id} ({coid}) "
                "that this ledger never reserved",
                {"client_order_id": coid, "symbol": update.order.symbol, "side": update.order.side.value},
            )
            return
        if update.kind is OrderEventKind.REPLACED and update.order.status is not OrderStatus.REPLACED:
            update = await self._replacing(update)
        event = event_for_update(update)
        if update.fill is not None:
            crashpoint("before_fill_stored")
        result = await self.ledger.apply_update(event, update.fill)
        if result.fill_recorded is False:
            self.stats.duplicate_fills += 1
        if result.fill_recorded:
            log.info(
                "fill_recorded",
                client_order_id=coid,
                broker_order_id=update.order.broker_order_id,
                execution_id=update.fill.execution_id if update.fill else None,
                qty=update.fill.qty if update.fill else None,
                price=update.fill.price if update.fill else None,
            )
        if result.illegal is not None:
            await self.incidents.illegal_transition(event, str(result.illegal))

    async def _replacing(self, update: OrderUpdate) -> OrderUpdate:
        """A ``replaced`` event that carries the replacing order (not the replaced one): the order it
        names (``replaces``) ends REPLACED, and the carried order advances to the state it reports."""
        if update.order.replaces is not None:
            replaced = await self.ledger.get_order_by_broker_id(update.order.replaces)
            if replaced is not None:
                await self.ledger.apply_event(
                    OrderEvent(
                        client_order_id=replaced.client_order_id,
                        kind=OrderEventKind.REPLACED,
                        reason=f"replaced by {update.order.client_order_id}",
                        broker_ts_ns=update.broker_ts_ns,
                        local_ts_ns=update.local_ts_ns,
                    )
                )
        kind = event_for_state(update.order, update.local_ts_ns).kind
        return update.model_copy(update={"kind": kind})

    async def _confirmed(self, subscription: object) -> None:
        """Once the broker confirms the subscription (a websocket's ``listening()``, where there is
        one): the stream is reachable, and after a reconnect the reconciler runs at once."""
        listening = getattr(subscription, "listening", None)
        if listening is not None:
            await listening()
            if not getattr(subscription, "confirmed", True):
                return  # it ended before it was confirmed: iterating raises why
        if self.stats.stream_restarts:
            log.info("update_stream_reconnected", reconnects=self.stats.stream_restarts)
            self.incidents.reconcile_wake.set()
        if self.reachability is not None:
            self.reachability.ok("stream")

    async def run(self) -> None:
        """Consume the broker's update stream forever; after each disconnect, reconcile and resubscribe."""
        backoff = 0.05
        while True:
            self.heartbeat()
            subscription = self.broker.updates()
            try:
                await self._confirmed(subscription)
                self.listening = True
                async for update in subscription:
                    self.heartbeat()
                    await self.handle_update(update)
                    backoff = 0.05
            except BrokerPayloadInvalid as error:
                # An update we cannot read is never guessed at: record it, then reconcile from REST.
                log.error("update_unreadable", error=str(error))
                raw = str(error.raw)[:2000]
                await self.incidents.report(
                    "unreadable_update",
                    hashlib.sha256(raw.encode()).hexdigest()[:16],
                    f"the broker sent an order update autoquant cannot read: {error}",
                    {"raw": raw},
                )
            except BrokerError as error:
                log.warning("update_stream_failed", error=str(error))
                if self.reachability is not None:
                    self.reachability.failed("stream", error)
            finally:
                if self.listening:
                    self.heartbeat()  # alive until this moment: the supervisor counted it as beating
                self.listening = False
                closer = getattr(subscription, "aclose", None)
                if closer is not None:
                    await closer()
            self.stats.stream_restarts += 1
            # Whatever happened while we were not listening is in the broker's REST view: reconcile.
            self.incidents.reconcile_wake.set()
            log.info("update_stream_reconnecting", delay_s=round(backoff, 3))
            await self.clock.sleep(backoff * (1 + random.random()))  # backoff with jitter, not a wait-for
            backoff = min(backoff * 2, 5.0)
