"""Every order type the daemon places (market, limit, stop, stop-limit) end to end: a strategy's intent
through the risk gate (a limit or stop price is the notional basis), the ledger, the execution worker,
the Alpaca adapter over loopback to paper-server (and the in-process paper broker), the paper exchange,
back to a FILLED order whose fills the ledger counts once."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from autoquant.clocks import SystemClock
from autoquant.domain.bars import Bar
from autoquant.domain.decisions import Decision, OrderIntent
from autoquant.domain.orders import OrderStatus
from autoquant.domain.strategy import StrategyState, order
from autoquant.domain.values import OrderType, Side, from_ns
from autoquant.ledger import Ledger
from autoquant.runtime.config import RiskSettings
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.market import MarketState
from autoquant.workers.reconciliation import Reconciler
from autoquant.workers.risk_gate import RiskGate
from autoquant.workers.strategy import StrategyWorker
from tests.brokers.server_harness import venue

#: A short latency, and no slippage or partial fills.
FRICTIONLESS: dict[str, Any] = {
    "latency_s": 0.01,
    "slippage_bps": Decimal(0),
    "partial_fill_probability": 0.0,
}

D = Decimal
#: (order type, limit price, stop price, the price that makes it fill) for a buy of 10 at a close of 100.
CASES = [
    (OrderType.MARKET, None, None, D(100)),
    (OrderType.LIMIT, D(99), None, D(98)),
    (OrderType.STOP, None, D(101), D("101.5")),
    (OrderType.STOP_LIMIT, D(102), D(101), D("101.5")),
]


class OneBuy:
    """A strategy that buys 10 once, with the order type and prices it was built with."""

    def __init__(self, order_type: OrderType, limit: Decimal | None, stop: Decimal | None) -> None:
        self.order_type, self.limit, self.stop = order_type, limit, stop

    id = "one"
    symbols = ("AAPL",)
    warmup = 1

    def decide(self, state: StrategyState) -> Decision:
        return order(
            state,
            Side.BUY,
            D(10),
            f"buy_{self.order_type.value}",
            order_type=self.order_type,
            limit_price=self.limit,
            stop_price=self.stop,
        )


def bar(close: Decimal) -> Bar:
    end = from_ns(time.time_ns())
    return Bar(
        symbol="AAPL",
        open_time=end - timedelta(seconds=1),
        close_time=end,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=D(10),
        source="test",
    )


@pytest.mark.parametrize(
    ("order_type", "limit", "stop", "basis"), [(t, lp, sp, lp or sp or D(100)) for t, lp, sp, _ in CASES]
)
async def test_the_notional_basis_is_the_limit_else_the_stop_else_the_last_price(
    tmp_path: Path, order_type: OrderType, limit: Decimal | None, stop: Decimal | None, basis: Decimal
) -> None:
    """max_order_notional is weighed at the limit price, else the stop price, else the last price."""
    clock = SystemClock()
    async with await Ledger.open(tmp_path / "ledger.db") as ledger:
        market = MarketState(clock, ["AAPL"], 30.0)
        market.observe(bar(D(100)))
        intent = OrderIntent(
            strategy_id="one",
            symbol="AAPL",
            side=Side.BUY,
            qty=D(10),
            order_type=order_type,
            limit_price=limit,
            stop_price=stop,
            reason="t",
            decision_id="d",
            data_time=from_ns(time.time_ns()),
        )
        at = RiskGate(ledger, market, clock, RiskSettings(max_order_notional=basis * 10))
        under = RiskGate(ledger, market, clock, RiskSettings(max_order_notional=basis * 10 - D("0.01")))
        assert (await at.check_intent(intent)).allowed
        refused = await under.check_intent(intent)
        assert not refused.allowed and "notional" in (refused.reason or "")


@pytest.mark.parametrize("kind", ["alpaca", "paper"])
@pytest.mark.parametrize(("order_type", "limit", "stop", "trigger"), CASES)
async def test_an_intent_of_each_type_fills_at_the_venue(
    tmp_path: Path,
    kind: str,
    order_type: OrderType,
    limit: Decimal | None,
    stop: Decimal | None,
    trigger: Decimal,
) -> None:
    """Decided, gated, reserved with its prices, sent through the broker, worked at the venue, FILLED."""
    clock = SystemClock()
    async with venue(kind, tmp_path, clock, **FRICTIONLESS) as (broker, exchange):
        ledger = await Ledger.open(tmp_path / "ledger.db")
        try:
            exchange.set_price("AAPL", D(100))
            settings = RiskSettings(max_order_notional=D(1100), max_position_notional=D(5000))
            market = MarketState(clock, ["AAPL"], settings.max_data_age_s)
            market.observe(bar(D(100)))
            gate = RiskGate(ledger, market, clock, settings)
            await gate.refresh_controls()
            submitted: list[str] = []
            strategy = OneBuy(order_type, limit, stop)
            worker = StrategyWorker(
                ledger, [strategy], market, gate, clock, submit=submitted.append, max_data_age_s=30.0
            )
            (decision,) = await worker.decide(strategy)
            assert decision is not None and decision.intent is not None
            (reserved,) = await ledger.orders_for_decision(decision.decision_id)
            assert (reserved.order_type, reserved.limit_price, reserved.stop_price) == (
                order_type,
                limit,
                stop,
            )
            execution = ExecutionWorker(ledger, broker, clock, pre_submit=gate.check_order)
            execution.submit_soon(submitted[0])
            sent = await execution.process(reserved)
            assert sent is not None and sent.status is OrderStatus.ACCEPTED, sent
            at_venue = await broker.get_by_client_order_id(reserved.client_order_id)
            assert at_venue is not None
            assert (at_venue.order_type, at_venue.limit_price, at_venue.stop_price) == (
                order_type,
                limit,
                stop,
            )

            exchange.set_price("AAPL", trigger)
            deadline = time.monotonic() + 10
            while (state := await broker.get_by_client_order_id(reserved.client_order_id)) is None or (
                state.status is not OrderStatus.FILLED
            ):
                assert time.monotonic() < deadline, f"{order_type.value} never filled: {state}"
                await asyncio.sleep(0.02)  # the venue's latency; polled against a deadline
            outcome = await Reconciler(ledger, broker, clock, {"AAPL": {"one"}}).run("test")
            assert outcome.clean, outcome.summary
            final = await ledger.get_order(reserved.client_order_id)
            assert final is not None and final.status is OrderStatus.FILLED and final.filled_qty == 10
            assert (await ledger.account_positions())["AAPL"] == 10
            if limit is not None:
                fills = await ledger.fills_after(0, 0)
                assert all(f.price <= limit for f in fills)
        finally:
            await ledger.close()
