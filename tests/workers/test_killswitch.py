"""The kill switch against the real ledger, the real in-process paper exchange and a fake clock.

Each trigger trips it exactly past its limit; HALTED (and REDUCING) never lift by themselves; a halt
stops new risk but not the machinery: cancels, stream updates and reconciliation keep running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.brokers.paper import PaperBroker, PaperExchange
from autoquant.clocks import FakeClock
from autoquant.domain.bars import Bar
from autoquant.domain.broker import BrokerAccount, OrderUpdate
from autoquant.domain.controls import ACCOUNT, Control, ControlKind, TradingState
from autoquant.domain.orders import Order, OrderEvent, OrderEventKind, OrderStatus
from autoquant.domain.values import Side, from_ns
from autoquant.errors import LedgerError
from autoquant.ledger import Ledger
from autoquant.runtime.config import Config, LedgerSettings, MarketDataSettings, PaperSettings, RiskSettings
from autoquant.runtime.system import BrokerHandle, build_system
from autoquant.workers.broker_requests import BrokerRequests
from autoquant.workers.execution import ExecutionWorker
from autoquant.workers.killswitch import KillSwitch
from autoquant.workers.market import MarketState
from autoquant.workers.order_stream import OrderStream
from autoquant.workers.reconciliation import Reconciler
from autoquant.workers.risk_gate import RiskGate
from tests.ledger_sql import ledger_query

D = Decimal
NEVER_POLL = float("inf")


def fresh_bar(clock: FakeClock, symbol: str = "AAPL", close: str = "100") -> Bar:
    """A bar that closes now, so the risk gate's freshness check passes."""
    end = from_ns(clock.now_ns())
    return Bar(
        symbol=symbol,
        open_time=end - timedelta(seconds=1),
        close_time=end,
        open=D(close),
        high=D(close),
        low=D(close),
        close=D(close),
        volume=D(100),
        source="test",
    )


@dataclass
class Switchboard:
    ledger: Ledger
    exchange: PaperExchange
    broker: PaperBroker
    market: MarketState
    gate: RiskGate
    execution: ExecutionWorker
    stream: OrderStream
    killswitch: KillSwitch
    clock: FakeClock
    updates: asyncio.Queue[OrderUpdate]

    async def deliver(self, keep: Callable[[OrderUpdate], bool] = lambda _: True) -> int:
        """Hand the exchange's emitted updates to the worker; those ``keep`` refuses are lost."""
        delivered = 0
        while not self.updates.empty():
            update = self.updates.get_nowait()
            if keep(update):
                await self.stream.handle_update(update)
                delivered += 1
        return delivered

    async def reserve(self, coid: str, qty: str = "10", side: Side = Side.BUY) -> Order:
        order = Order(
            client_order_id=coid,
            strategy_id="s1",
            symbol="AAPL",
            side=side,
            qty=D(qty),
            created_ns=self.clock.now_ns(),
        )
        assert await self.ledger.reserve(order)
        return order

    async def unknown(self, coid: str) -> None:
        """Reserve an order whose submit timed out: it is UNKNOWN from now."""
        await self.reserve(coid)
        await self.ledger.apply_event(
            OrderEvent(
                client_order_id=coid,
                kind=OrderEventKind.SUBMIT_UNKNOWN,
                reason="timeout",
                local_ts_ns=self.clock.now_ns(),
            )
        )

    async def send(self, coid: str, qty: str = "10") -> Order | None:
        """Reserve and submit one order as the strategy worker would."""
        order = await self.reserve(coid, qty)
        self.execution.submit_soon(coid)
        return await self.execution.process(order)

    async def record_equity(self, equity: str) -> None:
        value = D(equity)
        account = BrokerAccount(cash=value, equity=value, buying_power=value)
        await self.ledger.record_account(account, self.clock.now_ns())

    async def state(self) -> TradingState:
        return (await self.ledger.control_state()).trading_state


Make = Callable[..., Awaitable[Switchboard]]


@pytest.fixture
async def make(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Make]:
    made: list[Switchboard] = []

    async def factory(**risk: object) -> Switchboard:
        settings = RiskSettings(**risk)
        paper = PaperSettings(
            state_path=tmp_path / "paper.db",
            latency_s=0.5,
            partial_fill_probability=0.0,
            slippage_bps=D(0),
        )
        exchange = PaperExchange(paper, clock, ["AAPL"])
        exchange.set_price("AAPL", D(100))
        broker = PaperBroker(exchange)
        ledger = await Ledger.open(tmp_path / "ledger.db")
        config = Config(
            ledger=LedgerSettings(path=tmp_path / "ledger.db"),
            paper=paper,
            marketdata=MarketDataSettings(symbols=["AAPL"]),
            strategies=[],
            risk=settings,
        )
        system = build_system(config, clock, ledger, BrokerHandle(broker, exchange))
        system.killswitch.account_poll_s = NEVER_POLL
        system.market.observe(fresh_bar(clock))
        board = Switchboard(
            ledger,
            exchange,
            broker,
            system.market,
            system.gate,
            system.execution,
            system.order_stream,
            system.killswitch,
            clock,
            exchange.subscribe(),
        )
        made.append(board)
        return board

    yield factory
    for board in made:
        await board.broker.close()
        await board.ledger.close()
        board.exchange.close()


# -- REDUCING: the loss limits ---------------------------------------------------------------------


async def test_daily_loss_exactly_at_the_limit_does_not_trip(make: Make) -> None:
    """A loss equal to daily_loss_limit leaves trading ACTIVE (limits are inclusive)."""
    board = await make(daily_loss_limit=D(2000))
    await board.record_equity("100000")
    await board.record_equity("98000")
    await board.killswitch.check()
    assert await board.state() is TradingState.ACTIVE


async def test_daily_loss_beyond_the_limit_reduces(make: Make) -> None:
    """One cent of loss past daily_loss_limit trips REDUCING, with the numbers in the reason."""
    board = await make(daily_loss_limit=D(2000))
    await board.record_equity("100000")
    await board.record_equity("97999.99")
    await board.killswitch.check()
    state = await board.ledger.control_state()
    assert state.trading_state is TradingState.REDUCING
    assert "daily loss 2000.01" in state.state_reason and state.state_actor == "kill-switch"
    assert (await board.gate.refresh_controls()).trading_state is TradingState.REDUCING, (
        "the gate sees the new state"
    )


async def test_drawdown_exactly_at_the_limit_does_not_trip(make: Make) -> None:
    """A drawdown from the day's peak equal to max_drawdown leaves trading ACTIVE."""
    board = await make(max_drawdown=D(3000), daily_loss_limit=D(100000))
    await board.record_equity("100000")
    await board.record_equity("105000")
    await board.record_equity("102000")
    await board.killswitch.check()
    assert await board.state() is TradingState.ACTIVE


async def test_drawdown_beyond_the_limit_reduces(make: Make) -> None:
    """A drawdown past max_drawdown from the day's peak trips REDUCING even while the day is up."""
    board = await make(max_drawdown=D(3000), daily_loss_limit=D(100000))
    await board.record_equity("100000")
    await board.record_equity("105000")
    await board.record_equity("101999.99")
    await board.killswitch.check()
    state = await board.ledger.control_state()
    assert state.trading_state is TradingState.REDUCING
    assert "drawdown 3000.01" in state.state_reason


async def test_reducing_never_lifts_by_itself(make: Make) -> None:
    """Once REDUCING, equity recovering does not resume trading; only an operator's resume does."""
    board = await make(daily_loss_limit=D(2000))
    await board.record_equity("100000")
    await board.record_equity("90000")
    await board.killswitch.check()
    await board.record_equity("100000")
    for _ in range(10):
        await board.killswitch.check()
    assert await board.state() is TradingState.REDUCING


# -- HALTED: stuck orders, rejects, incidents, other processes ----------------------------------


async def test_unknown_order_exactly_at_the_age_bound_does_not_halt(make: Make) -> None:
    """An order UNKNOWN for exactly max_unknown_age_s is still given time."""
    board = await make(max_unknown_age_s=60.0)
    await board.unknown("aq-unknown")
    board.clock.advance(60)
    board.market.observe(fresh_bar(board.clock))
    await board.killswitch.check()
    assert await board.state() is TradingState.ACTIVE


async def test_unknown_order_past_the_age_bound_halts(make: Make) -> None:
    """An order UNKNOWN for longer than max_unknown_age_s halts trading, naming the order."""
    board = await make(max_unknown_age_s=60.0)
    await board.unknown("aq-unknown")
    board.clock.advance(60.001)
    await board.killswitch.check()
    state = await board.ledger.control_state()
    assert state.trading_state is TradingState.HALTED
    assert "aq-unknown" in state.state_reason


async def test_rejects_one_short_of_the_limit_do_not_halt(make: Make) -> None:
    """max_consecutive_rejects - 1 broker rejects in a row leave trading ACTIVE."""
    board = await make(
        max_consecutive_rejects=3,
        max_order_notional=D(10**9),
        max_position_notional=D(10**9),
        max_gross_exposure=D(10**9),
    )
    for n in range(2):
        after = await board.send(f"aq-big-{n}", qty="5000")
        assert after is not None and after.status is OrderStatus.REJECTED
    await board.killswitch.check()
    assert await board.state() is TradingState.ACTIVE


async def test_consecutive_rejects_at_the_limit_halt(make: Make) -> None:
    """max_consecutive_rejects broker rejects in a row (insufficient buying power) halt trading."""
    board = await make(
        max_consecutive_rejects=3,
        max_order_notional=D(10**9),
        max_position_notional=D(10**9),
        max_gross_exposure=D(10**9),
    )
    for n in range(3):
        after = await board.send(f"aq-big-{n}", qty="5000")
        assert after is not None and after.status is OrderStatus.REJECTED
    await board.killswitch.check()
    state = await board.ledger.control_state()
    assert state.trading_state is TradingState.HALTED
    assert "3 orders rejected in a row" in state.state_reason


async def test_reject_streak_and_order_rate_survive_a_restart(make: Make) -> None:
    """Two rejects before a restart and one after make three in a row; sends before it count in the rate."""
    limits: dict[str, object] = {
        "max_consecutive_rejects": 3,
        "max_orders_per_minute": 3,
        "max_order_notional": D(10**9),
        "max_position_notional": D(10**9),
        "max_gross_exposure": D(10**9),
    }
    before = await make(**limits)
    for n in range(2):
        after = await before.send(f"aq-big-{n}", qty="5000")
        assert after is not None and after.status is OrderStatus.REJECTED
    await before.killswitch.check()
    assert await before.state() is TradingState.ACTIVE
    await before.broker.close()
    await before.ledger.close()
    before.exchange.close()

    board = await make(**limits)  # a new process: nothing carried over in memory
    rejected = await board.send("aq-big-2", qty="5000")
    assert rejected is not None and rejected.status is OrderStatus.REJECTED
    await board.killswitch.check()
    state = await board.ledger.control_state()
    assert state.trading_state is TradingState.HALTED
    assert "3 orders rejected in a row" in state.state_reason
    snapshot = await board.gate.snapshot()
    assert len(snapshot.recent_order_ns) == 3, "the minute's sends, from before and after the restart"


async def test_an_accept_between_rejects_resets_the_count(make: Make) -> None:
    """Rejects separated by an accepted order are not "in a row"."""
    board = await make(
        max_consecutive_rejects=2,
        max_order_notional=D(10**9),
        max_position_notional=D(10**9),
        max_gross_exposure=D(10**9),
    )
    await board.send("aq-big-0", qty="5000")
    accepted = await board.send("aq-small", qty="1")
    assert accepted is not None and accepted.status is OrderStatus.ACCEPTED
    await board.send("aq-big-1", qty="5000")
    await board.killswitch.check()
    assert await board.state() is TradingState.ACTIVE


async def test_account_incident_opened_after_the_last_resume_halts(make: Make) -> None:
    """An open account-scope incident newer than the last resume halts trading, naming the incident."""
    board = await make()
    board.clock.advance(1)
    incident_id, _ = await board.ledger.open_incident(
        kind="unknown_order",
        subject="b-1",
        scope=ACCOUNT,
        message="the broker reports an order this ledger never reserved",
        action="reconcile",
        details={},
        local_ts_ns=board.clock.now_ns(),
    )
    await board.killswitch.check()
    state = await board.ledger.control_state()
    assert state.trading_state is TradingState.HALTED
    assert incident_id in state.state_reason


async def test_incident_older_than_the_resume_and_strategy_incidents_do_not_halt(make: Make) -> None:
    """An operator's resume after an incident is respected; a strategy-scope incident never halts."""
    board = await make()
    board.clock.advance(1)
    await board.ledger.open_incident(
        kind="unknown_order",
        subject="b-1",
        scope=ACCOUNT,
        message="foreign order",
        action="reconcile",
        details={},
        local_ts_ns=board.clock.now_ns(),
    )
    await board.ledger.open_incident(
        kind="data_gap",
        subject="AAPL:1",
        scope="s1",
        message="gap",
        action="check the feed",
        details={},
        local_ts_ns=board.clock.now_ns(),
    )
    board.clock.advance(1)
    await board.ledger.append_control(
        Control(
            kind=ControlKind.RESUME, reason="checked it", actor="operator", local_ts_ns=board.clock.now_ns()
        )
    )
    board.clock.advance(1)
    board.market.observe(fresh_bar(board.clock))
    for _ in range(3):
        await board.killswitch.check()
    assert await board.state() is TradingState.ACTIVE


async def test_control_appended_by_another_process_is_picked_up(make: Make, tmp_path: Path) -> None:
    """A halt the CLI appends through its own ledger connection reaches the gate on refresh()."""
    board = await make()
    await board.killswitch.refresh()
    async with await Ledger.open(tmp_path / "ledger.db") as cli:
        await cli.append_control(
            Control(kind=ControlKind.HALT, reason="operator says stop", actor="cli", local_ts_ns=1)
        )
    state = await board.killswitch.refresh()
    assert state.trading_state is TradingState.HALTED
    assert (await board.gate.refresh_controls()).state_reason == "operator says stop"


async def test_halted_never_resumes_by_itself(make: Make) -> None:
    """With the trigger gone, many checks later the account is still HALTED until a RESUME control."""
    board = await make(
        max_consecutive_rejects=1,
        max_order_notional=D(10**9),
        max_position_notional=D(10**9),
        max_gross_exposure=D(10**9),
    )
    await board.send("aq-big", qty="5000")
    await board.killswitch.check()
    assert await board.state() is TradingState.HALTED
    for _ in range(25):
        board.clock.advance(10)
        await board.killswitch.check()
    assert await board.state() is TradingState.HALTED
    await board.ledger.append_control(
        Control(kind=ControlKind.RESUME, reason="fixed", actor="operator", local_ts_ns=board.clock.now_ns())
    )
    board.market.observe(fresh_bar(board.clock))
    await board.killswitch.check()
    assert await board.state() is TradingState.ACTIVE
    assert (await board.gate.refresh_controls()).trading_state is TradingState.ACTIVE


async def test_halt_cancels_open_orders_when_configured(make: Make) -> None:
    """With cancel_all_on_halt, tripping HALTED cancels every working order at the exchange."""
    board = await make(cancel_all_on_halt=True)
    for coid in ("aq-w1", "aq-w2"):
        after = await board.send(coid, qty="1")
        assert after is not None and after.status is OrderStatus.ACCEPTED
    assert len(board.exchange.list_orders(status="open")) == 2
    await board.killswitch.trip(ControlKind.HALT, "test halt")
    assert await board.execution.carry_out_cancels() == 1, "the halt's cancel-all is one ledger request"
    assert board.exchange.list_orders(status="open") == []
    await board.deliver()
    for coid in ("aq-w1", "aq-w2"):
        order = await board.ledger.get_order(coid)
        assert order is not None and order.status is OrderStatus.CANCELED


async def test_a_trip_flattens_the_account_when_configured(make: Make) -> None:
    """With flatten_on_trip, the kill switch's trip flattens: the position is closed, every fill booked."""
    board = await make(flatten_on_trip=True)
    await board.send("aq-p1", qty="3")
    board.clock.advance(1)
    board.exchange.process()
    await board.deliver()
    assert (await board.ledger.account_positions())["AAPL"] == 3
    await board.killswitch.trip(ControlKind.REDUCE, "daily loss beyond the limit")
    requests = BrokerRequests(board.ledger, board.broker, board.clock, board.execution)
    assert await requests.carry_out() == 1, "the trip's flatten is one ledger request"
    board.clock.advance(1)
    board.exchange.process()
    await board.deliver()
    assert board.exchange.positions() == []
    assert (await board.ledger.account_positions())["AAPL"] == 0
    assert await board.ledger.incidents(open_only=True) == []


async def test_a_trip_leaves_positions_by_default(make: Make) -> None:
    """Without flatten_on_trip, a trip records no flatten request."""
    board = await make()
    await board.killswitch.trip(ControlKind.HALT, "test halt")
    assert await board.ledger.pending_broker_requests() == []


async def test_halt_leaves_open_orders_by_default(make: Make) -> None:
    """Without cancel_all_on_halt, a halt refuses new risk but leaves working orders working."""
    board = await make()
    await board.send("aq-w1", qty="1")
    await board.killswitch.trip(ControlKind.HALT, "test halt")
    assert len(board.exchange.list_orders(status="open")) == 1


# -- HALTED stops new risk, not the machinery ---------------------------------------------------


async def test_halted_refuses_new_orders_but_cancels_updates_and_reconciliation_go_on(make: Make) -> None:
    """While HALTED: a new order is DENIED before submit, yet cancels, fills and repairs run."""
    board = await make()
    for coid in ("aq-stream", "aq-cancel", "aq-missed"):
        after = await board.send(coid, qty="2")
        assert after is not None and after.status is OrderStatus.ACCEPTED
    await board.deliver()
    await board.killswitch.trip(ControlKind.HALT, "operator halt")
    assert (await board.gate.refresh_controls()).trading_state is TradingState.HALTED

    denied = await board.send("aq-new", qty="1")
    assert denied is not None and denied.status is OrderStatus.DENIED
    assert denied.reason is not None and "halted" in denied.reason
    assert board.exchange.get_by_client_order_id("aq-new") is None, "nothing reached the exchange"

    canceled = await board.execution.cancel("aq-cancel", "operator cancel")
    assert canceled is not None and canceled.status is OrderStatus.PENDING_CANCEL
    board.clock.advance(1)
    board.exchange.process()
    missed = board.exchange.get_by_client_order_id("aq-missed")
    assert missed is not None and missed.status is OrderStatus.FILLED
    await board.deliver(keep=lambda update: update.order.client_order_id != "aq-missed")
    final = {coid: await board.ledger.get_order(coid) for coid in ("aq-stream", "aq-cancel", "aq-missed")}
    assert final["aq-stream"] is not None and final["aq-stream"].status is OrderStatus.FILLED
    assert final["aq-cancel"] is not None and final["aq-cancel"].status is OrderStatus.CANCELED
    assert final["aq-missed"] is not None and final["aq-missed"].status is OrderStatus.ACCEPTED
    assert len(await board.ledger.fills_for_order("aq-stream")) == 1

    reconciler = Reconciler(board.ledger, board.broker, board.clock, {"AAPL": {"s1"}})
    outcome = await reconciler.run("periodic")
    assert outcome.fills_appended == 1
    repaired = await board.ledger.get_order("aq-missed")
    assert repaired is not None and repaired.status is OrderStatus.FILLED
    assert (await board.ledger.account_positions())["AAPL"] == D(4)
    assert await board.state() is TradingState.HALTED, "repairs do not lift a halt"


async def test_operator_cancel_requests_are_carried_out_once_even_while_halted(
    make: Make, tmp_path: Path
) -> None:
    """`autoquant cancel` (another process) is carried out by the execution worker while HALTED, once."""
    board = await make()
    for coid in ("aq-c1", "aq-c2", "aq-c3"):
        await board.send(coid, qty="1")
    await board.killswitch.trip(ControlKind.HALT, "operator halt")
    async with await Ledger.open(tmp_path / "ledger.db") as cli:
        await cli.request_cancel("aq-c1", "wrong size", "op@cli", 1)
    assert await board.execution.carry_out_cancels() == 1
    first = board.exchange.get_by_client_order_id("aq-c1")
    assert first is not None and first.status is OrderStatus.CANCELED
    assert len(board.exchange.list_orders(status="open")) == 2
    async with await Ledger.open(tmp_path / "ledger.db") as cli:
        await cli.request_cancel("*", "flatten", "op@cli", 2)
    assert await board.execution.carry_out_cancels() == 1
    assert await board.execution.carry_out_cancels() == 0
    assert board.exchange.list_orders(status="open") == []
    outcomes = await ledger_query(
        board.ledger, "SELECT request_seq, canceled FROM cancel_outcomes ORDER BY seq"
    )
    assert [seq for seq, _ in outcomes] == [1, 2], "each request carried out exactly once"
    assert await board.ledger.pending_cancel_requests() == []


async def test_cancel_request_for_an_unknown_order_is_refused(make: Make) -> None:
    """A cancel request naming no order in the ledger is refused and nothing is recorded."""
    board = await make()
    with pytest.raises(LedgerError, match="no order aq-nope"):
        await board.ledger.request_cancel("aq-nope", "r", "op", 1)
    assert await ledger_query(board.ledger, "SELECT count(*) FROM cancel_requests") == [(0,)]
