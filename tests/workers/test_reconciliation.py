"""The reconciler against the real ledger and the real in-process paper exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from autoquant.brokers.paper.broker import PaperBroker
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.clocks import FakeClock
from autoquant.domain.broker import BrokerAccount, BrokerOrderState, OrderRequest
from autoquant.domain.controls import TradingState
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order, OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce
from autoquant.errors import BrokerTransient
from autoquant.ledger import Ledger
from autoquant.runtime.config import PaperSettings
from autoquant.workers.adoption import event_for_state, event_for_update
from autoquant.workers.reconciliation import Reconciler
from tests.ledger_sql import ledger_query

D = Decimal
STRATEGIES = {"AAPL": {"sma-aapl"}, "MSFT": {"sma-msft"}}


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    async with await Ledger.open(tmp_path / "ledger.db") as opened:
        yield opened


@pytest.fixture
def exchange(tmp_path: Path, clock: FakeClock) -> Iterator[PaperExchange]:
    settings = PaperSettings(
        state_path=tmp_path / "paper.db",
        latency_s=0.05,
        slippage_bps=D(0),
        fee_bps=D(0),
        partial_fill_probability=0.0,
        starting_cash=D(100_000),
    )
    venue = PaperExchange(settings, clock, ("AAPL", "MSFT"))
    venue.set_price("AAPL", D(100))
    venue.set_price("MSFT", D(200))
    yield venue
    venue.close()


@pytest.fixture
async def broker(exchange: PaperExchange) -> AsyncIterator[PaperBroker]:
    paper = PaperBroker(exchange)
    yield paper
    await paper.close()


@pytest.fixture
def reconciler(ledger: Ledger, broker: PaperBroker, clock: FakeClock) -> Reconciler:
    return Reconciler(ledger, broker, clock, STRATEGIES)


async def reserve(
    ledger: Ledger, clock: FakeClock, coid: str, symbol: str = "AAPL", qty: str = "10"
) -> Order:
    strategy = next(iter(STRATEGIES[symbol]))
    order = Order(
        client_order_id=coid,
        strategy_id=strategy,
        symbol=symbol,
        side=Side.BUY,
        qty=D(qty),
        created_ns=clock.now_ns(),
    )
    assert await ledger.reserve(order)
    return order


async def place(
    ledger: Ledger, broker: PaperBroker, clock: FakeClock, coid: str, symbol: str = "AAPL"
) -> None:
    """Reserve in the ledger, submit to the paper broker, record the acknowledgement: ACCEPTED."""
    order = await reserve(ledger, clock, coid, symbol)
    state = await broker.submit(
        OrderRequest(client_order_id=coid, symbol=order.symbol, side=order.side, qty=order.qty)
    )
    await ledger.apply_event(event_for_state(state, clock.now_ns()))


def work(exchange: PaperExchange, clock: FakeClock) -> list[object]:
    """Let the venue's latency pass so due orders fill; returns the updates (which the ledger misses)."""
    clock.advance(0.1)
    return list(exchange.process())


async def control_count(ledger: Ledger) -> int:
    rows = await ledger_query(ledger, "SELECT count(*) FROM controls")
    return int(rows[0][0])


async def test_a_clean_run_is_recorded_clean_and_touches_nothing(
    ledger: Ledger, broker: PaperBroker, exchange: PaperExchange, clock: FakeClock, reconciler: Reconciler
) -> None:
    """A ledger that saw every update matches the broker: clean=True recorded, no incident, no control."""
    await place(ledger, broker, clock, "o1")
    clock.advance(0.1)
    for update in exchange.process():
        await ledger.apply_update(event_for_update(update), update.fill)
    outcome = await reconciler.run("startup")
    assert outcome.clean
    assert (outcome.fills_appended, outcome.events_applied, outcome.incident_ids) == (0, 0, [])
    last = await ledger.last_reconciliation()
    assert last is not None
    assert (last.trigger, last.clean) == ("startup", True)
    assert await control_count(ledger) == 0
    assert await ledger.incidents() == []


async def test_a_fill_the_ledger_missed_is_appended_and_counted_once(
    ledger: Ledger, broker: PaperBroker, exchange: PaperExchange, clock: FakeClock, reconciler: Reconciler
) -> None:
    """The ledger has the order FILLED but not the execution: it is appended once, then never again."""
    await place(ledger, broker, clock, "o1")
    for update in work(exchange, clock):
        assert hasattr(update, "kind")
    state = await broker.get_by_client_order_id("o1")
    assert state is not None
    await ledger.apply_event(event_for_state(state, clock.now_ns()))  # the event arrived, the fill did not
    first = await reconciler.run("startup")
    assert (first.clean, first.fills_appended, first.events_applied) == (True, 1, 0)
    second = await reconciler.run("periodic")
    assert (second.clean, second.fills_appended, second.events_applied) == (True, 0, 0)
    assert len(await ledger.fills_for_order("o1")) == 1
    assert await ledger.account_positions() == {"AAPL": D(10)}


async def test_an_accepted_order_the_broker_filled_advances_with_its_fills(
    ledger: Ledger, broker: PaperBroker, exchange: PaperExchange, clock: FakeClock, reconciler: Reconciler
) -> None:
    """ACCEPTED in the ledger, FILLED at the broker (stream lost): FILLED with the fill, positions agree."""
    await place(ledger, broker, clock, "o1")
    await place(ledger, broker, clock, "o2", "MSFT")
    work(exchange, clock)
    outcome = await reconciler.run("reconnect")
    assert (outcome.clean, outcome.fills_appended, outcome.events_applied) == (True, 2, 2)
    for coid in ("o1", "o2"):
        order = await ledger.get_order(coid)
        assert order is not None
        assert (order.status, order.filled_qty) == (OrderStatus.FILLED, D(10))
    assert await ledger.open_orders() == []
    assert await ledger.account_positions() == {"AAPL": D(10), "MSFT": D(10)}


async def test_an_order_placed_behind_the_ledgers_back_halts_the_account(
    ledger: Ledger, broker: PaperBroker, exchange: PaperExchange, clock: FakeClock, reconciler: Reconciler
) -> None:
    """An order the ledger never reserved is an account-wide unknown_order incident and a HALT, once."""
    intruder = exchange.submit(
        OrderRequest(client_order_id="manual-1", symbol="AAPL", side=Side.BUY, qty=D(3))
    )
    work(exchange, clock)  # it fills: the position it makes is explained by its fill, not a second incident
    outcome = await reconciler.run("startup")
    assert not outcome.clean
    (incident,) = await ledger.incidents()
    assert (incident.kind, incident.subject, incident.scope) == (
        "unknown_order",
        intruder.broker_order_id,
        "account",
    )
    assert "manual-1" in incident.message
    assert outcome.new_incident_ids == [incident.incident_id]
    controls = await ledger.control_state()
    assert controls.trading_state is TradingState.HALTED
    assert controls.state_actor == "reconciler"
    assert incident.incident_id in controls.state_reason
    again = await reconciler.run("periodic")
    assert (again.clean, again.incident_ids, again.new_incident_ids) == (False, [incident.incident_id], [])
    assert len(await ledger.incidents()) == 1
    assert await control_count(ledger) == 1


async def test_an_incident_the_stream_opened_gets_its_halt_when_reconciliation_confirms_it(
    ledger: Ledger, exchange: PaperExchange, clock: FakeClock, reconciler: Reconciler
) -> None:
    """The execution worker opens unknown_order without a control; the reconciler adds the HALT, once."""
    intruder = exchange.submit(
        OrderRequest(client_order_id="manual-2", symbol="MSFT", side=Side.BUY, qty=D(1))
    )
    incident_id, new = await ledger.open_incident(
        kind="unknown_order",
        subject=intruder.broker_order_id,
        scope="account",
        message="the stream reports an order this ledger never reserved",
        action="run `autoquant reconcile`",
        details={},
        local_ts_ns=clock.now_ns(),
    )
    assert new
    outcome = await reconciler.run("wake")
    assert (outcome.incident_ids, outcome.new_incident_ids) == ([incident_id], [])
    assert (await ledger.control_state()).trading_state is TradingState.HALTED
    await reconciler.run("periodic")
    assert await control_count(ledger) == 1


async def test_an_acknowledged_order_the_broker_does_not_know_pauses_its_strategy(
    ledger: Ledger, clock: FakeClock, reconciler: Reconciler
) -> None:
    """ACCEPTED in the ledger, absent at the broker: missing_order for its strategy and a PAUSE of it."""
    await reserve(ledger, clock, "ghost", "MSFT")
    await reserve(ledger, clock, "still-reserved", "AAPL")  # the execution worker's job, not an incident
    await ledger.apply_event(event_for_state(_lost_acknowledgement(clock, "ghost", "MSFT"), clock.now_ns()))
    outcome = await reconciler.run("startup")
    assert not outcome.clean
    (incident,) = await ledger.incidents()
    assert (incident.kind, incident.subject, incident.scope) == ("missing_order", "ghost", "sma-msft")
    controls = await ledger.control_state()
    assert controls.is_paused("sma-msft")
    assert not controls.is_paused("sma-aapl")
    assert controls.trading_state is TradingState.ACTIVE
    await reconciler.run("periodic")
    assert len(await ledger.incidents()) == 1
    assert await control_count(ledger) == 1


def _lost_acknowledgement(clock: FakeClock, coid: str, symbol: str) -> BrokerOrderState:
    """A broker acknowledgement from a venue that has since lost the order (built, not fetched)."""
    return BrokerOrderState(
        broker_order_id="lost-1",
        client_order_id=coid,
        symbol=symbol,
        side=Side.BUY,
        qty=D(10),
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.DAY,
        status=OrderStatus.ACCEPTED,
        created_ns=clock.now_ns(),
        updated_ns=clock.now_ns(),
    )


async def test_a_position_no_broker_fill_explains_pauses_the_strategy_once(
    ledger: Ledger, clock: FakeClock, reconciler: Reconciler
) -> None:
    """A ledger fill the broker never had leaves the ledger long: position_mismatch, PAUSE, not repeated."""
    await reserve(ledger, clock, "phantom")
    await ledger.append_fill(_phantom_fill(clock, "phantom", "x-phantom"))
    outcome = await reconciler.run("startup")
    assert not outcome.clean
    (incident,) = await ledger.incidents()
    assert (incident.kind, incident.subject, incident.scope) == ("position_mismatch", "AAPL", "sma-aapl")
    assert incident.details["ledger_qty"] == "4"
    assert incident.details["broker_qty"] == "0"
    assert (await ledger.control_state()).is_paused("sma-aapl")
    again = await reconciler.run("periodic")
    assert again.new_incident_ids == []
    assert await control_count(ledger) == 1


def _phantom_fill(clock: FakeClock, coid: str, execution_id: str) -> Fill:
    return Fill(
        execution_id=execution_id,
        client_order_id=coid,
        symbol="AAPL",
        side=Side.BUY,
        qty=D(4),
        price=D(100),
        broker_ts_ns=clock.now_ns(),
        local_ts_ns=clock.now_ns(),
    )


async def test_cash_moved_by_the_recorded_fills_is_clean_and_unexplained_cash_halts(
    ledger: Ledger, broker: PaperBroker, exchange: PaperExchange, clock: FakeClock, reconciler: Reconciler
) -> None:
    """The second run checks cash against the first run's snapshot: fills explain it, a phantom does not."""
    first = await reconciler.run("startup")
    assert first.summary["cash_check"] == "skipped"
    clock.advance(10)
    await place(ledger, broker, clock, "o1")
    clock.advance(10)
    for update in exchange.process():
        await ledger.apply_update(event_for_update(update), update.fill)
    clock.advance(10)
    second = await reconciler.run("periodic")
    assert (second.clean, second.summary["cash_check"]) == (True, "ok")
    assert (await broker.account()).cash == D(99_000)
    clock.advance(10)
    await reserve(ledger, clock, "phantom")
    await ledger.append_fill(_phantom_fill(clock, "phantom", "x-phantom"))
    clock.advance(10)
    third = await reconciler.run("periodic")
    kinds = sorted((i.kind, i.scope) for i in await ledger.incidents())
    assert kinds == [("cash_mismatch", "account"), ("position_mismatch", "sma-aapl")]
    assert third.summary["cash_check"] == "mismatch"
    assert (await ledger.control_state()).trading_state is TradingState.HALTED


async def test_the_fill_window_starts_at_the_previous_run(
    ledger: Ledger, broker: PaperBroker, exchange: PaperExchange, clock: FakeClock, reconciler: Reconciler
) -> None:
    """Later runs ask the broker only for fills since the previous run (less a margin), not all history."""
    await place(ledger, broker, clock, "old")
    work(exchange, clock)
    clock.advance(120)  # the fill is older than the window margin when the first run starts
    await reconciler.run("startup")
    clock.advance(3600)
    second = await reconciler.run("periodic")
    assert second.summary["broker_fills"] == 0
    assert second.clean


class FlakyBroker(PaperBroker):
    """The paper broker whose account read fails while ``failing`` is set (a broker outage)."""

    failing = False

    async def account(self) -> BrokerAccount:
        if self.failing:
            raise BrokerTransient("account read failed: 503")
        return await super().account()


async def test_run_raises_broker_errors_for_the_caller(
    ledger: Ledger, exchange: PaperExchange, clock: FakeClock
) -> None:
    """A broker that cannot be read fails the run (exit 2 in the CLI) and records nothing."""
    flaky = FlakyBroker(exchange)
    flaky.failing = True
    with pytest.raises(BrokerTransient):
        await Reconciler(ledger, flaky, clock, STRATEGIES).run("startup")
    assert await ledger.last_reconciliation() is None
    await flaky.close()


async def until(condition: Callable[[], Awaitable[bool]], deadline_s: float = 5.0) -> None:
    """Wait for ``condition`` with a deadline, polling briefly."""
    async with asyncio.timeout(deadline_s):
        while not await condition():  # noqa: ASYNC110 - a ledger query has no event to wait on
            await asyncio.sleep(0.01)


async def test_run_forever_runs_on_wake_and_survives_broker_errors(
    ledger: Ledger, exchange: PaperExchange, clock: FakeClock
) -> None:
    """Each wake runs once; a failed run is logged and the loop runs again at the next wake."""
    flaky = FlakyBroker(exchange)
    reconciler = Reconciler(ledger, flaky, clock, STRATEGIES)
    wake = asyncio.Event()

    async def runs() -> int:
        rows = await ledger_query(ledger, "SELECT count(*) FROM reconciliations")
        return int(rows[0][0])

    with capture_logs() as logs:

        async def failed() -> bool:
            return any(entry["event"] == "reconciliation_failed" for entry in logs)

        async def ran_once() -> bool:
            return await runs() >= 1

        async def ran_twice() -> bool:
            return await runs() >= 2

        task = asyncio.create_task(reconciler.run_forever(60.0, wake))
        try:
            wake.set()
            await until(ran_once)
            flaky.failing = True
            wake.set()
            await until(failed)
            flaky.failing = False
            wake.set()
            await until(ran_twice)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await flaky.close()
    events = [entry["event"] for entry in logs]
    assert events.count("reconciliation_clean") == 2
    assert events.count("reconciliation_failed") == 1
