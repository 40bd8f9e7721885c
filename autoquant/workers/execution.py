"""The execution worker: an outbox reader over the ledger, so every order reaches the broker at most once.

The order's row (with its deterministic client order id) is committed before this worker sees it.
A reservation made by this process is submitted at once. Any other RESERVED order (one that may have
been sent before a crash) and every UNKNOWN order is resolved by asking the broker for its client
order id first: found → adopt it; not found → send it again *with the same id* once the grace period
has passed (the broker refuses a second order under one id, so a late first attempt cannot double it).

    submit ok                  → ACCEPTED with the broker's order id (and whatever state it reports)
    timeout / 5xx / dropped    → UNKNOWN, resolved by lookup (never assumed failed or succeeded)
    422 duplicate client id    → adopt the broker's order: we sent it before
    other 4xx                  → REJECTED with the broker's reason
    429 / refused before send  → stays RESERVED, retried with backoff
    auth failure               → raised: a fatal error, the daemon stops and says why

Operator cancel requests (``autoquant cancel``, and the kill switch's cancel-all on HALT) are ledger
events this worker carries out on its sweep, in every trading state. The broker's order-update stream
is another worker's (``OrderStream``); the two share only the ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from autoquant.brokers.port import Broker
from autoquant.domain.broker import BrokerOrderState, OrderRequest
from autoquant.domain.clock import Clock
from autoquant.domain.orders import Order, OrderEvent, OrderEventKind, OrderStatus
from autoquant.errors import (
    BrokerAmbiguous,
    BrokerAuthError,
    BrokerError,
    BrokerNotFound,
    BrokerRejected,
    BrokerTransient,
    DuplicateClientOrderId,
)
from autoquant.ledger import Ledger
from autoquant.ledger.records import RiskEvent
from autoquant.workers.adoption import event_for_state
from autoquant.workers.crashpoints import crashpoint
from autoquant.workers.incidents import IncidentReporter

log = structlog.get_logger("autoquant.execution")

#: Re-runs the risk gate on an order immediately before it is sent; None = no gate configured.
PreSubmitCheck = Callable[[Order], Awaitable[RiskEvent]]


def request_for(order: Order) -> OrderRequest:
    return OrderRequest(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        qty=None if order.notional is not None else order.qty,
        order_type=order.order_type,
        time_in_force=order.time_in_force,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        notional=order.notional,
        trail_price=order.trail_price,
        trail_percent=order.trail_percent,
        extended_hours=order.extended_hours,
    )


@dataclass
class ExecutionStats:
    submitted: int = 0
    accepted: int = 0
    rejected: int = 0
    unknown: int = 0
    adopted: int = 0
    resubmitted: int = 0
    denied: int = 0
    duplicate_fills: int = 0
    last_submit_ns: dict[str, int] = field(default_factory=dict)


class ExecutionWorker:
    def __init__(
        self,
        ledger: Ledger,
        broker: Broker,
        clock: Clock,
        *,
        pre_submit: PreSubmitCheck | None = None,
        incidents: IncidentReporter | None = None,
        resubmit_grace_s: float = 2.0,
        sweep_interval_s: float = 1.0,
        heartbeat: Callable[[], None] = lambda: None,
    ) -> None:
        self.ledger = ledger
        self.broker = broker
        self.clock = clock
        self.pre_submit = pre_submit
        self.incidents = incidents
        self.resubmit_grace_ns = int(resubmit_grace_s * 1e9)
        self.sweep_interval_s = sweep_interval_s
        self.heartbeat = heartbeat
        self.stats = ExecutionStats()
        self._fresh: asyncio.Queue[str] = asyncio.Queue()
        self._fresh_ids: set[str] = set()
        self._draining = False
        self._started = asyncio.Event()
        self._processing = asyncio.Lock()
        self._on_sweep: list[Callable[[], Awaitable[int]]] = []

    def also_on_sweep(self, task: Callable[[], Awaitable[int]]) -> None:
        """Run ``task`` on every sweep, after the cancels (the composition root adds the replace and
        flatten requests here: they need this worker, so it cannot be given them when it is built)."""
        self._on_sweep.append(task)

    # -- the strategy side's entry point ----------------------------------------------------------

    def submit_soon(self, client_order_id: str) -> None:
        """A reservation this process just committed: it has never been sent, so send it directly."""
        self._fresh_ids.add(client_order_id)
        self._fresh.put_nowait(client_order_id)

    def drain(self) -> None:
        """Stop sending new reservations; what is in flight resolves."""
        self._draining = True

    async def withdraw_unsent(self, reason: str = "withdrawn at shutdown before it was sent") -> int:
        """Cancel, in the ledger only, the reservations this process made and never sent.

        Only ids this process reserved and has not passed to the broker are withdrawn: for those we
        know no request left the process. Anything else stays for the next start to resolve by lookup.
        """
        withdrawn = 0
        async with self._processing:
            for coid in sorted(self._fresh_ids):
                order = await self.ledger.get_order(coid)
                if order is not None and order.status is OrderStatus.RESERVED:
                    await self._apply(
                        OrderEvent(
                            client_order_id=coid,
                            kind=OrderEventKind.CANCELED,
                            reason=reason,
                            local_ts_ns=self.clock.now_ns(),
                        )
                    )
                    withdrawn += 1
            self._fresh_ids.clear()
        return withdrawn

    @property
    def started(self) -> asyncio.Event:
        """Set once every order left RESERVED or UNKNOWN by a previous run has been resolved."""
        return self._started

    # -- the outbox -------------------------------------------------------------------------------

    async def resolve_pending(self, *, send_missing: bool = True) -> list[Order]:
        """Resolve every RESERVED and UNKNOWN order; return the ones still unresolved.

        With ``send_missing=False`` only lookups are made (orders found at the broker are adopted);
        the daemon starts that way, before market data flows, and leaves sending to the outbox.
        """
        unresolved = []
        for order in await self.ledger.open_orders():
            if order.status in (OrderStatus.RESERVED, OrderStatus.UNKNOWN):
                self.heartbeat()  # a slow broker makes a long sweep, not a stuck worker
                after = await self.process(order, send_missing=send_missing)
                if after is not None and after.status in (OrderStatus.RESERVED, OrderStatus.UNKNOWN):
                    unresolved.append(after)
        return unresolved

    async def run_outbox(self) -> None:
        """Start-up resolution first, then fresh reservations as they come and a periodic sweep."""
        await self.resolve_pending()
        self._started.set()
        clock = self.clock
        next_sweep = clock.monotonic() + self.sweep_interval_s
        while True:
            self.heartbeat()
            # Sweep on a fixed period even while fresh orders keep coming, so an UNKNOWN order is
            # never starved of its lookup by a busy market.
            sweep_due = False
            try:
                async with clock.timeout(max(0.0, next_sweep - clock.monotonic())):
                    coid = await self._fresh.get()
            except TimeoutError:
                # The timer was set for the sweep: it is due, even if the clock reads a hair short of it
                # (asyncio runs a timer within its clock resolution of now; a virtual clock would never
                # move on while this loop keeps re-arming a timer that is already due).
                coid, sweep_due = None, True
            if coid is not None:
                order = await self.ledger.get_order(coid)
                if order is not None:
                    await self.process(order)
            if sweep_due or clock.monotonic() >= next_sweep:
                await self.carry_out_cancels()
                for task in self._on_sweep:
                    try:
                        await task()
                    except (BrokerTransient, BrokerAmbiguous) as error:
                        log.warning("sweep_task_deferred", error=str(error))
                await self.resolve_pending()
                next_sweep = clock.monotonic() + self.sweep_interval_s

    async def idle(self) -> None:
        """Wait until no order is being processed (used by the drain)."""
        async with self._processing:
            return

    async def settle(self, poll_s: float = 0.1) -> None:
        """Until nothing is in flight: no order being processed and none UNKNOWN (each resolved by
        lookup, or sent again under the same id once its grace has passed). A reservation is never
        sent while draining. The drain calls this under its deadline; without it, a submit answered
        by a 5xx just before SIGTERM stays UNKNOWN until the next start."""
        while True:
            try:
                left = await self.resolve_pending()
            except BrokerError as error:
                log.warning("drain_resolution_failed", error=str(error))
                return
            if not any(order.status is OrderStatus.UNKNOWN for order in left):
                return
            await self.clock.sleep(poll_s)  # the grace period or the broker's recovery, under the deadline

    async def process(self, order: Order, *, send_missing: bool = True) -> Order | None:
        """Move one RESERVED or UNKNOWN order forward; returns its state afterwards."""
        async with self._processing:
            return await self._process(order, send_missing)

    async def _process(self, order: Order, send_missing: bool) -> Order | None:
        structlog.contextvars.bind_contextvars(
            client_order_id=order.client_order_id, decision_id=order.decision_id
        )
        try:
            if order.status is OrderStatus.RESERVED and order.client_order_id in self._fresh_ids:
                return await self._submit(order)
            if order.status in (OrderStatus.RESERVED, OrderStatus.UNKNOWN):
                return await self._resolve(order, send_missing=send_missing)
            return order
        finally:
            structlog.contextvars.unbind_contextvars("client_order_id", "decision_id")

    async def _resolve(self, order: Order, *, send_missing: bool = True) -> Order | None:
        try:
            state = await self.broker.get_by_client_order_id(order.client_order_id)
        except BrokerTransient as error:
            log.warning("order_lookup_failed", error=str(error))
            return order
        if state is not None:
            self.stats.adopted += 1
            log.info("order_adopted", broker_order_id=state.broker_order_id, status=state.status.value)
            return await self.adopt(order, state)
        last = self.stats.last_submit_ns.get(order.client_order_id, order.updated_ns or order.created_ns)
        if not send_missing or self.clock.now_ns() - last < self.resubmit_grace_ns:
            return order
        if order.status is OrderStatus.UNKNOWN:
            self.stats.resubmitted += 1
            log.info("order_resubmitting", reason="not found at the broker after the grace period")
        return await self._submit(order)

    async def _submit(self, order: Order) -> Order | None:
        if self._draining and order.status is OrderStatus.RESERVED:
            # Shutting down: nothing new goes out. A fresh one (still in _fresh_ids) is withdrawn by
            # the drain; any other is left for the next start to resolve by lookup.
            return order
        risk: RiskEvent | None = None
        if self.pre_submit is not None:
            risk = await self.pre_submit(order)
            if not risk.allowed:
                self.stats.denied += 1
                log.info("order_denied", reason=risk.reason)
                return await self._apply(
                    OrderEvent(
                        client_order_id=order.client_order_id,
                        kind=OrderEventKind.DENIED,
                        reason=risk.reason,
                        local_ts_ns=self.clock.now_ns(),
                    ),
                    risk,
                )
        self._fresh_ids.discard(order.client_order_id)  # from here on it may reach the broker
        self.stats.submitted += 1
        self.stats.last_submit_ns[order.client_order_id] = self.clock.now_ns()
        try:
            state = await self._send(order)
        except DuplicateClientOrderId:
            existing = await self.broker.get_by_client_order_id(order.client_order_id)
            if existing is None:
                return await self._unknown(order, "broker reported a duplicate but has no such order", risk)
            self.stats.adopted += 1
            log.info(
                "order_adopted", broker_order_id=existing.broker_order_id, via="duplicate_client_order_id"
            )
            return await self.adopt(order, existing, risk)
        except BrokerAmbiguous as error:
            return await self._unknown(order, str(error), risk)
        except BrokerTransient as error:
            if risk is not None:
                await self.ledger.append_risk_event(risk)
            log.warning("order_submit_deferred", error=str(error))
            self._fresh_ids.add(order.client_order_id)  # nothing reached the broker: still fresh
            return order
        except BrokerAuthError:
            raise
        except BrokerRejected as error:
            self.stats.rejected += 1
            log.warning("order_rejected", reason=str(error), status=error.status)
            return await self._apply(
                OrderEvent(
                    client_order_id=order.client_order_id,
                    kind=OrderEventKind.REJECTED,
                    reason=str(error),
                    local_ts_ns=self.clock.now_ns(),
                ),
                risk,
            )
        crashpoint("after_submit")
        self.stats.accepted += 1
        log.info("order_submitted", broker_order_id=state.broker_order_id, status=state.status.value)
        # The pre-submit check is recorded with the acknowledgement: one commit, before after_ack.
        adopted = await self.adopt(order, state, risk)
        if order.replaces is not None:
            await self._replaced(order.replaces, state)
        crashpoint("after_ack")
        return adopted

    async def _send(self, order: Order) -> BrokerOrderState:
        """Submit the order, or, for a replacement, replace the order it names (under the
        replacement's own client order id, so a lookup resolves an ambiguous replace)."""
        if order.replaces is None:
            return await self.broker.submit(request_for(order))
        old = await self.ledger.get_order(order.replaces)
        if old is None or old.broker_order_id is None:
            raise BrokerRejected(
                f"the order it replaces ({order.replaces}) was never acknowledged by the broker"
            )
        if old.status.is_terminal:
            raise BrokerRejected(f"the order it replaces ({order.replaces}) is already {old.status.value}")
        log.info("order_replacing", replaces=old.client_order_id, old_broker_order_id=old.broker_order_id)
        try:
            return await self.broker.replace(old.broker_order_id, request_for(order))
        except BrokerNotFound as error:
            raise BrokerRejected(f"the broker does not know the order it replaces ({error})") from error

    async def _replaced(self, client_order_id: str, new: BrokerOrderState) -> None:
        """The replaced order ends REPLACED (the broker's ``replaced`` event says the same; twice is once)."""
        await self._apply(
            OrderEvent(
                client_order_id=client_order_id,
                kind=OrderEventKind.REPLACED,
                reason=f"replaced by {new.client_order_id}",
                broker_ts_ns=new.created_ns,
                local_ts_ns=self.clock.now_ns(),
            )
        )

    async def _unknown(self, order: Order, why: str, risk: RiskEvent | None = None) -> Order | None:
        self.stats.unknown += 1
        log.warning("order_outcome_unknown", error=why)
        return await self._apply(
            OrderEvent(
                client_order_id=order.client_order_id,
                kind=OrderEventKind.SUBMIT_UNKNOWN,
                reason=why,
                local_ts_ns=self.clock.now_ns(),
            ),
            risk,
        )

    async def adopt(
        self, order: Order, state: BrokerOrderState, risk: RiskEvent | None = None
    ) -> Order | None:
        """Bring the ledger's order to the broker's state, fetching any fills the ledger lacks.

        ``risk``, the pre-submit check of the submit this answers, is recorded with the transition."""
        if state.filled_qty > order.filled_qty:
            await self._fetch_fills(order, state)
        return await self._apply(event_for_state(state, self.clock.now_ns()), risk)

    async def _fetch_fills(self, order: Order, state: BrokerOrderState) -> None:
        try:
            fills = await self.broker.fills(since_ns=state.created_ns)
        except BrokerError as error:
            log.warning("fills_fetch_failed", error=str(error))
            return
        for fill in fills:
            if fill.client_order_id == order.client_order_id and not await self.ledger.append_fill(fill):
                self.stats.duplicate_fills += 1

    async def _apply(self, event: OrderEvent, risk: RiskEvent | None = None) -> Order | None:
        result = await self.ledger.apply_event(event, risk=risk)
        if result.illegal is not None:
            await self._report_illegal(event, str(result.illegal))
        return result.order

    async def _report_illegal(self, event: OrderEvent, message: str) -> None:
        if self.incidents is not None:
            await self.incidents.illegal_transition(event, message)
        else:
            log.error("order_event_refused", error=message, event_kind=event.kind.value)

    # -- cancels -------------------------------------------------------------------------------

    async def cancel(self, client_order_id: str, reason: str = "cancel requested") -> Order | None:
        order = await self.ledger.get_order(client_order_id)
        if order is None or order.status.is_terminal:
            return order
        if order.broker_order_id is None:
            state = await self.broker.get_by_client_order_id(client_order_id)
            if state is None:
                # Never reached the broker: withdraw it here so it is never sent.
                return await self._apply(
                    OrderEvent(
                        client_order_id=client_order_id,
                        kind=OrderEventKind.CANCELED,
                        reason=reason,
                        local_ts_ns=self.clock.now_ns(),
                    )
                )
            order = await self.adopt(order, state) or order
            if order.status.is_terminal or order.broker_order_id is None:
                return order
        await self._apply(
            OrderEvent(
                client_order_id=client_order_id,
                kind=OrderEventKind.CANCEL_REQUESTED,
                broker_order_id=order.broker_order_id,
                reason=reason,
                local_ts_ns=self.clock.now_ns(),
            )
        )
        try:
            await self.broker.cancel(order.broker_order_id)
        except BrokerNotFound:
            state = await self.broker.get_by_client_order_id(client_order_id)
            if state is not None:
                return await self.adopt(order, state)
        except BrokerRejected as error:
            return await self._apply(
                OrderEvent(
                    client_order_id=client_order_id,
                    kind=OrderEventKind.CANCEL_REJECTED,
                    reason=str(error),
                    local_ts_ns=self.clock.now_ns(),
                )
            )
        log.info("order_cancel_requested", client_order_id=client_order_id)
        return await self.ledger.get_order(client_order_id)

    async def cancel_all_open(self, reason: str) -> int:
        count = 0
        for order in await self.ledger.open_orders():
            await self.cancel(order.client_order_id, reason)
            count += 1
        return count

    async def carry_out_cancels(self) -> int:
        """Carry out the cancel requests in the ledger (the operator's, the kill switch's), each once."""
        done = 0
        for request in await self.ledger.pending_cancel_requests():
            try:
                # Under the processing lock: a cancel never interleaves with a resolution or a
                # resend of the same order (the drain's settle runs beside this sweep).
                async with self._processing:
                    if request.target == "*":
                        count = await self.cancel_all_open(request.reason)
                        detail = f"cancel requested for {count} open order(s)"
                    else:
                        order = await self.cancel(request.target, request.reason)
                        count = 0 if order is None else 1
                        status = "no such order" if order is None else order.status.value
                        detail = f"{request.target}: {status}"
            except (BrokerTransient, BrokerAmbiguous) as error:
                # Left pending: the next sweep tries again; the outbox itself carries on.
                log.warning("operator_cancel_deferred", target=request.target, error=str(error))
                continue
            log.info("operator_cancel_done", target=request.target, detail=detail, actor=request.actor)
            await self.ledger.record_cancel_outcome(request.seq, count, detail, self.clock.now_ns())
            done += 1
        return done
