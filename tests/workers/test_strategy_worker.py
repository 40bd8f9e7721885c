"""The strategy worker and the risk gate's two checks, against the real ledger and a fake clock.

Per bar: decide, check the intent, record decision + risk event + reservation together, then hand the
id to the execution worker. The gate runs again right before submit, on fresh state.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.brokers.paper import PaperBroker, PaperExchange
from autoquant.clocks import FakeClock
from autoquant.domain.bars import Bar
from autoquant.domain.controls import Control, ControlKind
from autoquant.domain.orders import OrderEvent, OrderEventKind, OrderStatus
from autoquant.domain.values import from_ns
from autoquant.ledger import Ledger
from autoquant.runtime.config import PaperSettings, RiskSettings
from autoquant.strategies import SmaCross
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.killswitch import KillSwitch
from autoquant.workers.market import MarketState
from autoquant.workers.risk_gate import RiskGate
from autoquant.workers.strategy import StrategyWorker
from tests.ledger_sql import ledger_query

D = Decimal
#: Flat, then a jump: the 2-bar average crosses above the 4-bar average on the last bar.
BULLISH = ("100", "100", "100", "100", "100", "110")
SYMBOLS = ["AAPL", "MSFT"]


def sma(strategy_id: str = "sma-aapl", symbol: str = "AAPL", qty: str = "10") -> SmaCross:
    return SmaCross(id=strategy_id, symbol=symbol, fast=2, slow=4, qty=D(qty))


@dataclass
class Desk:
    ledger: Ledger
    market: MarketState
    gate: RiskGate
    worker: StrategyWorker
    clock: FakeClock
    submitted: list[str] = field(default_factory=list)

    def feed(self, symbol: str, closes: Sequence[str]) -> None:
        """One bar per close, a second apart, the last one closing now."""
        now = self.clock.now_ns()
        for i, close in enumerate(closes):
            end = from_ns(now - (len(closes) - 1 - i) * 1_000_000_000)
            price = D(close)
            self.market.observe(
                Bar(
                    symbol=symbol,
                    open_time=end - timedelta(seconds=1),
                    close_time=end,
                    open=price,
                    high=price,
                    low=price,
                    close=price,
                    volume=D(10),
                    source="test",
                )
            )

    async def rows(self, sql: str) -> list[tuple[object, ...]]:
        return await ledger_query(self.ledger, sql)


Make = Callable[..., Awaitable[Desk]]


@pytest.fixture
async def make(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Make]:
    ledgers: list[Ledger] = []

    async def factory(strategies: Sequence[SmaCross] = (), **risk: object) -> Desk:
        settings = RiskSettings(**risk)
        ledger = await Ledger.open(tmp_path / "ledger.db")
        ledgers.append(ledger)
        market = MarketState(clock, SYMBOLS, settings.max_data_age_s)
        gate = RiskGate(ledger, market, clock, settings)
        await gate.refresh_controls()
        submitted: list[str] = []
        worker = StrategyWorker(
            ledger,
            list(strategies) or [sma()],
            market,
            gate,
            clock,
            submit=submitted.append,
            max_data_age_s=settings.max_data_age_s,
        )
        return Desk(ledger, market, gate, worker, clock, submitted)

    yield factory
    for ledger in ledgers:
        await ledger.close()


async def test_bullish_cross_records_decision_risk_event_reservation_and_submits(make: Make) -> None:
    """A bullish cross becomes one decision, one allowed risk event, one reservation and one submit call."""
    desk = await make()
    desk.feed("AAPL", BULLISH)
    (decision,) = await desk.worker.decide(desk.worker.strategies[0])
    assert decision is not None and decision.reason == "bullish_cross"
    assert await desk.rows("SELECT decision_id, action, reason FROM decisions") == [
        (decision.decision_id, "buy", "bullish_cross")
    ]
    risk = await desk.rows("SELECT decision_id, stage, allowed, client_order_id FROM risk_events")
    orders = await desk.ledger.orders_for_decision(decision.decision_id)
    assert len(orders) == 1 and orders[0].status is OrderStatus.RESERVED and orders[0].qty == 10
    assert risk == [(decision.decision_id, "decision", 1, orders[0].client_order_id)]
    assert desk.submitted == [orders[0].client_order_id]
    assert desk.worker.orders == 1 and desk.worker.decisions == 1


async def test_holds_are_recorded_and_counted_by_reason(make: Make) -> None:
    """Warming up and no-cross holds are recorded as decisions and counted per reason; nothing is sent."""
    desk = await make()
    desk.feed("AAPL", ["100", "100", "100"])
    await desk.worker.decide(desk.worker.strategies[0])
    desk.clock.advance(3)
    desk.feed("AAPL", ["100", "100", "100"])  # same prices, newer bars: 6 flat bars
    await desk.worker.decide(desk.worker.strategies[0])
    assert desk.worker.holds == {"warming_up": 1, "no_cross": 1}
    rows = await desk.rows("SELECT action, reason FROM decisions ORDER BY seq")
    assert rows == [("hold", "warming_up"), ("hold", "no_cross")]
    assert desk.submitted == [] and await desk.rows("SELECT count(*) FROM orders") == [(0,)]


async def test_the_state_recorded_with_each_decision_follows_what_it_saw(make: Make) -> None:
    """The state text kept for replay is remade whenever its bar counts or freshness change."""
    desk = await make()
    strategy = desk.worker.strategies[0]
    desk.feed("AAPL", ["100", "100", "100"])
    await desk.worker.decide(strategy)
    desk.clock.advance(3)
    desk.feed("AAPL", ["100", "100", "100"])
    await desk.worker.decide(strategy)
    desk.clock.advance(1)
    desk.feed("AAPL", ["100"])  # a seventh bar: the strategy still sees six
    await desk.worker.decide(strategy)
    desk.clock.advance(1)
    desk.feed("AAPL", ["100"])
    desk.clock.advance(2)  # decided two seconds after the bar closed
    await desk.worker.decide(strategy)
    rows = [
        json.loads(str(text))
        for (text,) in await desk.rows("SELECT state_json FROM decision_states ORDER BY seq")
    ]
    assert [(row["bars"]["AAPL"], row["data_age_ns"]) for row in rows] == [
        (3, 0),
        (6, 0),
        (6, 0),
        (6, 2_000_000_000),
    ]
    assert await desk.rows("SELECT count(*) FROM bars") == [(8,)]  # each bar recorded once


async def test_stale_data_holds_stale_data_and_is_recorded(make: Make) -> None:
    """Bars older than max_data_age_s give a recorded stale_data hold, even on a cross."""
    desk = await make(max_data_age_s=5.0)
    desk.feed("AAPL", BULLISH)
    desk.clock.advance(5.001)
    assert not desk.market.freshness.is_fresh("AAPL")
    (decision,) = await desk.worker.decide(desk.worker.strategies[0])
    assert decision is not None and decision.reason == "stale_data"
    assert desk.worker.holds == {"stale_data": 1}
    assert await desk.rows("SELECT action, reason FROM decisions") == [("hold", "stale_data")]
    assert desk.submitted == []


async def test_data_exactly_max_age_old_is_still_fresh(make: Make) -> None:
    """A bar exactly max_data_age_s old still trades (freshness is inclusive)."""
    desk = await make(max_data_age_s=5.0)
    desk.feed("AAPL", BULLISH)
    desk.clock.advance(5.0)
    (decision,) = await desk.worker.decide(desk.worker.strategies[0])
    assert decision is not None and decision.reason == "bullish_cross"
    assert len(desk.submitted) == 1


async def test_paused_strategy_intent_is_denied_with_the_pause_named(make: Make) -> None:
    """A paused strategy's intent is refused at decision time: risk event names the pause, no reservation."""
    desk = await make()
    await desk.ledger.append_control(
        Control(kind=ControlKind.PAUSE, scope="sma-aapl", reason="operator pause", actor="cli", local_ts_ns=1)
    )
    await desk.gate.refresh_controls()
    desk.feed("AAPL", BULLISH)
    (decision,) = await desk.worker.decide(desk.worker.strategies[0])
    assert decision is not None and decision.action.value == "buy"
    risk = await desk.rows("SELECT stage, allowed, reason, client_order_id FROM risk_events")
    assert len(risk) == 1
    stage, allowed, reason, coid = risk[0]
    assert (stage, allowed, coid) == ("decision", 0, None)
    assert isinstance(reason, str) and "paused" in reason and "operator pause" in reason
    assert await desk.rows("SELECT count(*) FROM orders") == [(0,)]
    assert await desk.rows("SELECT count(*) FROM decisions") == [(1,)], "the decision is still recorded"
    assert desk.submitted == [] and desk.worker.denied == 1


async def test_same_bar_decided_again_after_restart_reserves_nothing(make: Make) -> None:
    """A replayed bar (same decision id) after a restart records and reserves nothing the second time."""
    first = await make()
    first.feed("AAPL", BULLISH)
    await first.worker.decide(first.worker.strategies[0])
    assert len(first.submitted) == 1
    # The first order ended without a fill, so the replay sees a flat book and wants the same order again.
    await first.ledger.apply_event(
        OrderEvent(
            client_order_id=first.submitted[0],
            kind=OrderEventKind.CANCELED,
            reason="withdrawn",
            local_ts_ns=first.clock.now_ns(),
        )
    )
    restarted = await make()
    restarted.feed("AAPL", BULLISH)
    (decision,) = await restarted.worker.decide(restarted.worker.strategies[0])
    assert decision is not None and decision.reason == "bullish_cross"
    assert restarted.submitted == [] and restarted.worker.orders == 0
    assert await restarted.rows("SELECT count(*) FROM orders") == [(1,)]
    assert await restarted.rows("SELECT count(*) FROM decisions") == [(1,)]
    assert await restarted.rows("SELECT count(*) FROM risk_events") == [(1,)]


async def test_two_strategies_that_together_breach_gross_exposure_second_is_refused(make: Make) -> None:
    """The gate is account-level: the second strategy's order sees the first one's open order."""
    desk = await make(
        strategies=[sma("sma-aapl", "AAPL"), sma("sma-msft", "MSFT")], max_gross_exposure=D(1500)
    )
    desk.feed("AAPL", BULLISH)
    desk.feed("MSFT", BULLISH)
    aapl, msft = desk.worker.strategies
    await desk.worker.decide(aapl)
    await desk.worker.decide(msft)
    assert len(desk.submitted) == 1
    orders = await desk.ledger.open_orders()
    assert [order.symbol for order in orders] == ["AAPL"]
    rows = await desk.rows("SELECT strategy_id, allowed, reason FROM risk_events ORDER BY seq")
    assert rows[0][:2] == ("sma-aapl", 1)
    assert rows[1][:2] == ("sma-msft", 0)
    assert isinstance(rows[1][2], str) and rows[1][2].startswith("max_gross_exposure")


async def test_each_strategy_alone_within_gross_exposure_both_trade(make: Make) -> None:
    """Two orders that together fit max_gross_exposure both go through."""
    desk = await make(
        strategies=[sma("sma-aapl", "AAPL"), sma("sma-msft", "MSFT")], max_gross_exposure=D(2200)
    )
    desk.feed("AAPL", BULLISH)
    desk.feed("MSFT", BULLISH)
    for strategy in desk.worker.strategies:
        await desk.worker.decide(strategy)
    assert len(desk.submitted) == 2


# -- the second check, right before submit ------------------------------------------------------


@pytest.fixture
async def exchange(tmp_path: Path, clock: FakeClock) -> AsyncIterator[PaperExchange]:
    settings = PaperSettings(
        state_path=tmp_path / "paper.db", latency_s=0.5, partial_fill_probability=0.0, slippage_bps=D(0)
    )
    venue = PaperExchange(settings, clock, SYMBOLS)
    venue.set_price("AAPL", D(110))
    venue.set_price("MSFT", D(110))
    yield venue
    venue.close()


async def test_halt_landing_between_decision_and_submit_denies_before_submit(
    make: Make, exchange: PaperExchange, tmp_path: Path
) -> None:
    """An order allowed at decision time is DENIED at the pre-submit check once a halt has landed."""
    desk = await make()
    broker = PaperBroker(exchange)
    execution = ExecutionWorker(desk.ledger, broker, desk.clock, pre_submit=desk.gate.check_order)
    killswitch = KillSwitch(desk.ledger, broker, desk.clock, RiskSettings(), account_poll_s=float("inf"))
    await killswitch.refresh()
    desk.worker.submit = execution.submit_soon
    desk.feed("AAPL", BULLISH)
    await desk.worker.decide(desk.worker.strategies[0])
    (order,) = await desk.ledger.open_orders()
    async with await Ledger.open(tmp_path / "ledger.db") as cli:
        await cli.append_control(
            Control(kind=ControlKind.HALT, reason="stop now", actor="cli", local_ts_ns=desk.clock.now_ns())
        )
    await killswitch.refresh()
    after = await execution.process(order)
    assert after is not None and after.status is OrderStatus.DENIED
    assert exchange.list_orders(status="all") == []
    rows = await desk.rows("SELECT stage, allowed FROM risk_events ORDER BY seq")
    assert rows == [("decision", 1), ("submit", 0)]
    await broker.close()


async def test_pre_submit_check_sees_exposure_added_after_the_decision(
    make: Make, exchange: PaperExchange
) -> None:
    """The pre-submit check reads positions fresh: a fill that landed since the decision can deny it."""
    desk = await make(max_position_notional=D(1500))
    broker = PaperBroker(exchange)
    execution = ExecutionWorker(desk.ledger, broker, desk.clock, pre_submit=desk.gate.check_order)
    desk.worker.submit = execution.submit_soon
    desk.feed("AAPL", BULLISH)
    await desk.worker.decide(desk.worker.strategies[0])
    (order,) = await desk.ledger.open_orders()
    # Another order of the account (reserved and filled meanwhile) takes most of the position room.
    other = order.model_copy(
        update={"client_order_id": "aq-other", "decision_id": None, "strategy_id": "manual", "qty": D(5)}
    )
    assert await desk.ledger.reserve(other)
    unchecked = ExecutionWorker(desk.ledger, broker, desk.clock)
    unchecked.submit_soon("aq-other")
    accepted = await unchecked.process(other)
    assert accepted is not None and accepted.status is OrderStatus.ACCEPTED
    desk.clock.advance(1)
    desk.feed("AAPL", ["110"])
    exchange.process()
    state = exchange.get_by_client_order_id("aq-other")
    assert state is not None
    await unchecked.adopt(accepted, state)
    assert (await desk.ledger.account_positions())["AAPL"] == 5
    after = await execution.process(order)
    assert after is not None and after.status is OrderStatus.DENIED
    assert after.reason is not None and after.reason.startswith("max_position_notional")
    assert exchange.get_by_client_order_id(order.client_order_id) is None
    await broker.close()


async def test_halt_in_ledger_denies_pre_submit_without_a_kill_switch_poll(
    make: Make, exchange: PaperExchange, tmp_path: Path
) -> None:
    """A halt appended to the ledger after the decision denies the order at the pre-submit check."""
    desk = await make()
    broker = PaperBroker(exchange)
    execution = ExecutionWorker(desk.ledger, broker, desk.clock, pre_submit=desk.gate.check_order)
    desk.worker.submit = execution.submit_soon
    desk.feed("AAPL", BULLISH)
    await desk.worker.decide(desk.worker.strategies[0])
    (order,) = await desk.ledger.open_orders()
    async with await Ledger.open(tmp_path / "ledger.db") as cli:
        await cli.append_control(
            Control(kind=ControlKind.HALT, reason="stop now", actor="cli", local_ts_ns=1)
        )
    after = await execution.process(order)
    await broker.close()
    assert after is not None and after.status is OrderStatus.DENIED


async def test_a_reservation_older_than_the_data_age_limit_is_denied_before_submit(make: Make) -> None:
    """A decision reserved before a long outage is not sent on fresh bars: DENIED as decision_age."""
    desk = await make(max_data_age_s=30.0)
    desk.feed("AAPL", BULLISH)
    await desk.worker.decide(desk.worker.strategies[0])
    (order,) = await desk.ledger.open_orders()
    fresh = await desk.gate.check_order(order)
    assert fresh.allowed
    desk.clock.advance(31)
    desk.feed("AAPL", ["110"])  # new bars arrive after the restart: the market data is fresh again
    stale = await desk.gate.check_order(order)
    assert not stale.allowed
    assert stale.reason is not None and stale.reason.startswith("decision_age")
