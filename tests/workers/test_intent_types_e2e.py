"""The order types a strategy intent can carry beyond market/limit/stop/stop-limit, end to end on a clock
the test sets: trailing stops (by price and by percent), a notional market order, an extended-hours
limit, a market-on-open and a limit-on-close sent in their windows. Each travels strategy -> risk gate ->
ledger -> execution -> broker (the Alpaca adapter over loopback to paper-server, and the in-process
paper broker) -> paper exchange, and the ledger records it FILLED with its fills counted once.
Monday 2026-11-30 is a trading day in EST: the open is 14:30 UTC, the close 21:00 UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from autoquant.clocks import FakeClock
from autoquant.domain.bars import Bar
from autoquant.domain.decisions import Decision, OrderIntent
from autoquant.domain.orders import Order, OrderStatus
from autoquant.domain.strategy import StrategyState, order
from autoquant.domain.values import OrderType, Side, TimeInForce
from autoquant.ledger import Ledger
from autoquant.runtime.config import RiskSettings
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.market import MarketState
from autoquant.workers.reconciliation import Reconciler
from autoquant.workers.risk_gate import RiskGate
from autoquant.workers.strategy import StrategyWorker
from tests.brokers.server_harness import venue, wait_until

#: No latency (the fake clock moves only when the test says), slippage or partial fills.
NO_FRICTION: dict[str, Any] = {"latency_s": 0.0, "slippage_bps": Decimal(0), "partial_fill_probability": 0.0}

D = Decimal
MONDAY = datetime(2026, 11, 30, tzinfo=UTC)
SESSION = MONDAY.replace(hour=15)  # 10:00 New York
OPEN = MONDAY.replace(hour=14, minute=30)
CLOSE = MONDAY.replace(hour=21)


@dataclass(frozen=True)
class Case:
    """A buy decided at ``sent_at`` at a close of 100; at ``fills_at`` the price ``trigger`` fills it."""

    name: str
    terms: dict[str, Any]
    trigger: Decimal
    filled: int = 10
    sent_at: datetime = SESSION
    fills_at: datetime = SESSION


CASES = [
    Case("trail_price", {"order_type": OrderType.TRAILING_STOP, "trail_price": D(1)}, D("101.5")),
    Case(
        "trail_percent",
        {"order_type": OrderType.TRAILING_STOP, "trail_percent": D(1), "time_in_force": TimeInForce.GTC},
        D("101.5"),
    ),
    Case("notional", {"qty": None, "notional": D(500)}, D(100), filled=5),
    Case(
        "extended_hours",
        {"order_type": OrderType.LIMIT, "limit_price": D(99), "extended_hours": True},
        D(98),
    ),
    # 8:00 New York: before the 9:28 cut-off, so it waits for today's open and trades there.
    Case("opg", {"time_in_force": TimeInForce.OPG}, D(101), sent_at=MONDAY.replace(hour=13), fills_at=OPEN),
    # Noon New York: before the 15:50 cut-off, so it trades in today's closing auction.
    Case(
        "cls",
        {"order_type": OrderType.LIMIT, "limit_price": D(102), "time_in_force": TimeInForce.CLS},
        D(101),
        sent_at=MONDAY.replace(hour=17),
        fills_at=CLOSE,
    ),
]


class OneBuy:
    """A strategy that buys once with the terms it was built with (10 shares unless notional)."""

    id = "one"
    symbols = ("AAPL",)
    warmup = 1

    def __init__(self, terms: dict[str, Any]) -> None:
        self.terms = {"qty": D(10)} | terms

    def decide(self, state: StrategyState) -> Decision:
        terms = dict(self.terms)
        return order(state, Side.BUY, terms.pop("qty"), "buy", **terms)


def bar(at: datetime, close: Decimal) -> Bar:
    return Bar(
        symbol="AAPL",
        open_time=at - timedelta(minutes=1),
        close_time=at,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=D(10),
        source="test",
    )


@pytest.mark.parametrize("kind", ["alpaca", "paper"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_an_intent_of_each_further_type_fills_at_the_venue(
    tmp_path: Path, kind: str, case: Case
) -> None:
    """Decided, gated, reserved with its terms, sent with them through the broker, FILLED in the ledger."""
    clock = FakeClock()
    clock.set(case.sent_at)
    async with (
        venue(kind, tmp_path, clock, **NO_FRICTION) as (broker, exchange),
        await Ledger.open(tmp_path / "l.db") as ledger,
    ):
        exchange.set_price("AAPL", D(100))
        settings = RiskSettings(max_order_notional=D(1100), max_position_notional=D(5000))
        market = MarketState(clock, ["AAPL"], settings.max_data_age_s)
        market.observe(bar(case.sent_at, D(100)))
        gate = RiskGate(ledger, market, clock, settings)
        await gate.refresh_controls()
        submitted: list[str] = []
        strategy = OneBuy(case.terms)
        worker = StrategyWorker(
            ledger, [strategy], market, gate, clock, submit=submitted.append, max_data_age_s=30
        )
        (decision,) = await worker.decide(strategy)
        assert decision is not None and decision.intent is not None, decision
        (reserved,) = await ledger.orders_for_decision(decision.decision_id)
        terms = {k: v for k, v in case.terms.items() if k != "qty"}
        assert {k: getattr(reserved, k) for k in terms} == terms
        execution = ExecutionWorker(ledger, broker, clock, pre_submit=gate.check_order)
        execution.submit_soon(submitted[0])
        sent = await execution.process(reserved)
        assert sent is not None and sent.status is OrderStatus.ACCEPTED, sent
        at_venue = await broker.get_by_client_order_id(reserved.client_order_id)
        assert at_venue is not None
        assert {k: getattr(at_venue, k) for k in terms} == terms

        async def filled() -> bool:
            state = await broker.get_by_client_order_id(reserved.client_order_id)
            return state is not None and state.status is OrderStatus.FILLED

        if case.fills_at != case.sent_at:  # an auction order trades in its auction, not before
            exchange.set_price("AAPL", case.trigger)
            assert not await filled()
        clock.set(case.fills_at)
        exchange.set_price("AAPL", case.trigger)

        await wait_until(filled, f"{case.name} FILLED at the venue")
        outcome = await Reconciler(ledger, broker, clock, {"AAPL": {"one"}}).run("test")
        assert outcome.clean, outcome.summary
        final = await ledger.get_order(reserved.client_order_id)
        assert final is not None and final.status is OrderStatus.FILLED, final
        assert final.filled_qty == case.filled
        assert (await ledger.account_positions())["AAPL"] == case.filled
        assert sum(f.qty for f in await ledger.fills_after(0, 0)) == case.filled


@pytest.mark.parametrize(("qty", "allowed"), [(5, True), (6, False)])
async def test_an_open_notional_order_counts_its_dollars_toward_the_position(
    tmp_path: Path, qty: int, allowed: bool
) -> None:
    """An open $600 notional buy counts as 6 shares at 100: a further buy of 5 fits a $1100 position
    limit, 6 does not; its own pre-submit check does not count it twice (1200 would not fit)."""
    clock = FakeClock()
    clock.set(SESSION)
    async with await Ledger.open(tmp_path / "l.db") as ledger:
        market = MarketState(clock, ["AAPL"], 30.0)
        market.observe(bar(SESSION, D(100)))
        gate = RiskGate(ledger, market, clock, RiskSettings(max_position_notional=D(1100)))
        await gate.refresh_controls()
        pending = Order(
            client_order_id="aq-n", strategy_id="one", symbol="AAPL", side=Side.BUY, qty=D(0), notional=D(600)
        )
        assert await ledger.reserve(pending)
        assert (await gate.check_order(pending)).allowed
        more = order_intent(qty)
        assert (await gate.check_intent(more)).allowed is allowed


def order_intent(qty: int) -> OrderIntent:
    return OrderIntent(
        strategy_id="one",
        symbol="AAPL",
        side=Side.BUY,
        qty=D(qty),
        reason="more",
        decision_id="d-more",
        data_time=SESSION,
    )
