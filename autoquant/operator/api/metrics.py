"""``GET /metrics``: Prometheus text from our own ``CollectorRegistry``.

Everything the ledger knows is folded in from the global journal (``events_after``), incrementally, on
each scrape: decisions by (strategy, action, reason), the latency from a bar's close to its decision and
from a decision to the broker's acknowledgement, order states, fees, slippage against the decision's
close, reconciliation results. What only the running daemon knows (loop lag, worker restarts, ledger
commit time) travels through its status side file, which it rewrites every second; those gauges are NaN
while the daemon is down rather than stale. The broker counts as reachable while the newest
reconciliation (which needs the broker's account, positions and orders) is younger than
``max([alerts] broker_unreachable_s, 3 x [reconcile] interval_s)``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PromCounter

from autoquant.domain.controls import ACCOUNT, TradingState
from autoquant.domain.orders import OrderStatus
from autoquant.ledger import LedgerEvent, LedgerReader
from autoquant.operator.daemon_view import daemon_status
from autoquant.runtime.config import Config

TRADING_STATE_VALUE = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SLIPPAGE_BUCKETS = (-50.0, -20.0, -10.0, -5.0, -2.0, 0.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
#: Decisions waiting for their order's acknowledgement are forgotten beyond this many (bounded memory).
_PENDING_CAP = 10_000


def unreachable_after_s(config: Config) -> float:
    """How old the newest reconciliation may be while the broker still counts as reachable."""
    return max(config.alerts.broker_unreachable_s, 3 * config.reconcile.interval_s)


def broker_reachable(last_finished_ns: int | None, now_ns: int, config: Config) -> bool:
    return last_finished_ns is not None and (now_ns - last_finished_ns) / 1e9 <= unreachable_after_s(config)


class Metrics:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        r = self.registry
        self.cursor = 0
        self.decisions = PromCounter(
            "autoquant_decisions", "Decisions recorded", ["strategy", "action", "reason"], registry=r
        )
        self.decision_latency = Histogram(
            "autoquant_decision_latency_seconds",
            "Bar close to decision recorded",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.submit_latency = Histogram(
            "autoquant_submit_latency_seconds",
            "Decision recorded to the broker's acknowledgement",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.orders = Gauge("autoquant_orders", "Orders by current state", ["state"], registry=r)
        self.orders_unknown = Gauge(
            "autoquant_orders_unknown", "Orders whose submit outcome is unknown", registry=r
        )
        self.oldest_unknown = Gauge(
            "autoquant_oldest_unknown_order_age_seconds", "Age of the oldest UNKNOWN order", registry=r
        )
        self.trading_state = Gauge("autoquant_trading_state", "0 active, 1 reducing, 2 halted", registry=r)
        self.paused = Gauge("autoquant_paused", "1 while a scope is paused", ["scope"], registry=r)
        self.reconciliations = PromCounter(
            "autoquant_reconciliations", "Reconciliation runs", ["result"], registry=r
        )
        self.drift = Gauge(
            "autoquant_broker_drift",
            "Unexplained differences with the broker in the last reconciliation",
            ["kind"],
            registry=r,
        )
        self.fees = PromCounter("autoquant_fees", "Fees paid (account currency)", registry=r)
        self.slippage = Histogram(
            "autoquant_slippage_bps",
            "Realized slippage of fills against the deciding bar's close, bps (positive = worse)",
            buckets=_SLIPPAGE_BUCKETS,
            registry=r,
        )
        self.slippage_assumed = Gauge(
            "autoquant_slippage_assumed_bps", "The paper exchange's configured slippage", registry=r
        )
        self.commit = Gauge(
            "autoquant_ledger_commit_seconds", "The daemon's recent ledger commit time (p99)", registry=r
        )
        self.loop_lag = Gauge(
            "autoquant_loop_lag_seconds", "The daemon's event-loop lag (recent max)", registry=r
        )
        self.restarts = Gauge(
            "autoquant_worker_restarts_total",
            "Worker restarts since the daemon started",
            ["worker"],
            registry=r,
        )
        self.reachable = Gauge("autoquant_broker_reachable", "1 while the broker answers", registry=r)
        self.daemon_up = Gauge("autoquant_daemon_up", "1 while the daemon's status file is fresh", registry=r)
        self.slippage_assumed.set(float(config.paper.slippage_bps))
        self._decision_ns: dict[str, tuple[int, Decimal | None]] = {}
        self._order: dict[str, tuple[int, Decimal | None, str]] = {}
        self._states: dict[str, str] = {}
        self._final: Counter[str] = Counter()

    async def render(self, reader: LedgerReader, status_file: Any) -> bytes:
        await self._fold(reader)
        await self._current(reader)
        self._daemon(status_file)
        return generate_latest(self.registry)

    async def _fold(self, reader: LedgerReader) -> None:
        while True:
            events = await reader.events_after(self.cursor, limit=2000)
            for event in events:
                self._event(event)
                self.cursor = event.seq
            if len(events) < 2000:
                return

    def _event(self, event: LedgerEvent) -> None:
        f = event.fields
        if event.kind == "decision":
            self.decisions.labels(f["strategy_id"], f["action"], f["reason"]).inc()
            close_ns = int(f["data_time_ns"])  # a decision's data time is its bar's close time
            self.decision_latency.observe(max(0.0, (event.local_ts_ns - close_ns) / 1e9))
            if f["action"] != "hold" and len(self._decision_ns) < _PENDING_CAP:
                close = (f.get("inputs") or {}).get("close")
                self._decision_ns[f["decision_id"]] = (
                    event.local_ts_ns,
                    None if close is None else Decimal(str(close)),
                )
        elif event.kind == "order_reserved":
            decided = self._decision_ns.pop(str(f.get("decision_id")), None)
            self._states[f["client_order_id"]] = OrderStatus.RESERVED.value
            if decided is not None:
                self._order[f["client_order_id"]] = (decided[0], decided[1], str(f["side"]))
        elif event.kind == "order_event":
            coid, after = str(f["client_order_id"]), str(f["status_after"])
            pending = self._order.get(coid)
            if pending is not None and after not in ("reserved", "unknown", "denied"):
                self.submit_latency.observe(max(0.0, (event.local_ts_ns - pending[0]) / 1e9))
                self._order[coid] = (-1, pending[1], pending[2])
            if OrderStatus(after).is_terminal:
                self._states.pop(coid, None)
                self._final[after] += 1
                self._order.pop(coid, None)
            else:
                self._states[coid] = after
        elif event.kind == "fill":
            self.fees.inc(float(Decimal(str(f["fee"]))))
            known = self._order.get(str(f["client_order_id"]))
            if known is not None and known[1]:
                price, reference = Decimal(str(f["price"])), known[1]
                worse = price - reference if known[2] == "buy" else reference - price
                self.slippage.observe(float(worse / reference * 10_000))
        elif event.kind == "reconciliation":
            self.reconciliations.labels("clean" if f["clean"] else "mismatch").inc()
            kinds = Counter(str(i.get("kind")) for i in (f.get("summary") or {}).get("incidents", []))
            self.drift.labels("cash").set(kinds["cash_mismatch"])
            self.drift.labels("position").set(kinds["position_mismatch"])

    async def _current(self, reader: LedgerReader) -> None:
        controls = await reader.control_state()
        self.trading_state.set(TRADING_STATE_VALUE[controls.trading_state])
        self.paused.clear()
        self.paused.labels(ACCOUNT).set(1 if ACCOUNT in controls.paused else 0)
        for strategy in self.config.strategies:
            self.paused.labels(strategy.id).set(1 if strategy.id in controls.paused else 0)
        now = time.time_ns()
        states: Counter[str] = Counter(self._final)
        states.update(self._states.values())
        self.orders.clear()
        for status in OrderStatus:
            self.orders.labels(status.value).set(states[status.value])
        last = await reader.last_reconciliation()
        finished = None if last is None else last.finished_ns
        self.reachable.set(1 if broker_reachable(finished, now, self.config) else 0)
        unknown = [o for o in await reader.open_orders() if o.status is OrderStatus.UNKNOWN]
        self.orders_unknown.set(len(unknown))
        oldest = min((o.updated_ns or o.created_ns for o in unknown), default=None)
        self.oldest_unknown.set(0 if oldest is None else max(0.0, (now - oldest) / 1e9))

    def _daemon(self, status_file: Any) -> None:
        daemon = daemon_status(status_file, time.time_ns())
        self.daemon_up.set(1 if daemon["running"] else 0)
        if not daemon["running"]:
            self.reachable.set(float("nan"))  # nobody is asking the broker
        self.restarts.clear()
        for worker in daemon["workers"]:
            self.restarts.labels(worker["name"]).set(worker.get("restarts") or 0)
        extra: dict[str, Any] = {}
        if daemon["running"]:
            try:
                body = json.loads(status_file.read_text(encoding="utf-8"))
                extra = body.get("metrics") or {} if isinstance(body, dict) else {}
            except (OSError, ValueError):
                extra = {}
        for gauge, key in ((self.loop_lag, "loop_lag_s"), (self.commit, "ledger_commit_p99_s")):
            value = extra.get(key)
            gauge.set(float(value) if isinstance(value, int | float) else float("nan"))
