"""Reconciliation while fills keep landing: the real ledger, the real paper exchange, trades between reads.

``LandingBroker`` is the real ``PaperBroker`` whose reads, once they have answered, can let a trade land:
an order is reserved, sent to the exchange and filled there, and the order stream's work is done on the
ledger (or, when the plan says so, lost, for reconciliation to repair). Which read lets which trade land is
the plan; everything happens in the one loop, so each plan runs the same way every time.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from autoquant.brokers.paper.broker import PaperBroker
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.clocks import FakeClock
from autoquant.domain.broker import BrokerAccount, BrokerOrderState, BrokerPosition, OrderRequest
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order
from autoquant.domain.values import Side
from autoquant.ledger import Ledger
from autoquant.runtime.config import PaperSettings
from autoquant.workers.adoption import event_for_state, event_for_update
from autoquant.workers.reconciliation import Reconciler

D = Decimal
STRATEGIES = {"AAPL": {"sma-aapl"}, "MSFT": {"sma-msft"}}
#: The broker reads a reconciliation pass makes, by the name of the ``Broker`` method.
READS = ("account", "list_orders", "get_by_client_order_id", "fills", "positions")


@dataclass(frozen=True)
class Landing:
    """A trade that lands after the ``occurrence``-th call (1-based) of the broker read ``read``."""

    read: str
    occurrence: int
    symbol: str = "AAPL"
    qty: int = 1
    #: Whether the order stream delivers the fill to the ledger (else reconciliation must append it).
    delivered: bool = True
    #: False: a phantom, a fill only the ledger gets (the broker never trades): a genuine mismatch.
    at_broker: bool = True


class LandingBroker(PaperBroker):
    """The real paper broker; after a read has answered, the planned trades land (at the exchange and,
    as the order stream would record them, in the ledger)."""

    def __init__(self, exchange: PaperExchange, ledger: Ledger, clock: FakeClock) -> None:
        super().__init__(exchange)
        self.ledger = ledger
        self.clock = clock
        self.plan: list[Landing] = []
        self.calls: Counter[str] = Counter()
        self.landed = 0

    async def _after(self, read: str) -> None:
        self.calls[read] += 1
        for landing in self.plan:
            if (landing.read, landing.occurrence) == (read, self.calls[read]):
                await self.land(landing)

    async def land(self, landing: Landing) -> None:
        self.landed += 1
        coid = f"land-{self.landed}"
        order = Order(
            client_order_id=coid,
            strategy_id=next(iter(STRATEGIES[landing.symbol])),
            symbol=landing.symbol,
            side=Side.BUY,
            qty=D(landing.qty),
            created_ns=self.clock.now_ns(),
        )
        assert await self.ledger.reserve(order)
        if not landing.at_broker:
            now = self.clock.now_ns()
            assert await self.ledger.append_fill(
                Fill(
                    execution_id=f"phantom-{coid}",
                    client_order_id=coid,
                    symbol=order.symbol,
                    side=order.side,
                    qty=order.qty,
                    price=D(100),
                    broker_ts_ns=now,
                    local_ts_ns=now,
                )
            )
            return
        state = self.exchange.submit(
            OrderRequest(client_order_id=coid, symbol=order.symbol, side=order.side, qty=order.qty)
        )
        await self.ledger.apply_event(event_for_state(state, self.clock.now_ns()))
        self.clock.advance(0.1)
        updates = self.exchange.process()
        assert any(u.fill is not None and u.order.client_order_id == coid for u in updates)
        if landing.delivered:
            for update in updates:
                await self.ledger.apply_update(event_for_update(update), update.fill)

    async def account(self) -> BrokerAccount:
        answer = await super().account()
        await self._after("account")
        return answer

    async def list_orders(
        self, *, open_only: bool = True, since_ns: int | None = None
    ) -> list[BrokerOrderState]:
        answer = await super().list_orders(open_only=open_only, since_ns=since_ns)
        await self._after("list_orders")
        return answer

    async def get_by_client_order_id(self, client_order_id: str) -> BrokerOrderState | None:
        answer = await super().get_by_client_order_id(client_order_id)
        await self._after("get_by_client_order_id")
        return answer

    async def fills(self, *, since_ns: int | None = None) -> list[Fill]:
        answer = await super().fills(since_ns=since_ns)
        await self._after("fills")
        return answer

    async def positions(self) -> list[BrokerPosition]:
        answer = await super().positions()
        await self._after("positions")
        return answer


@dataclass
class Desk:
    ledger: Ledger
    exchange: PaperExchange
    broker: LandingBroker
    clock: FakeClock
    reconciler: Reconciler

    async def broker_positions(self) -> dict[str, Decimal]:
        return {p.symbol: p.qty for p in self.exchange.positions()}

    async def mismatches(self) -> list[tuple[str, str]]:
        return [
            (i.subject, i.message) for i in await self.ledger.incidents() if i.kind == "position_mismatch"
        ]


async def open_desk(root: Path) -> Desk:
    clock = FakeClock()
    settings_ = PaperSettings(
        state_path=root / "paper.db",
        latency_s=0.05,
        slippage_bps=D(0),
        fee_bps=D(0),
        partial_fill_probability=0.0,
        starting_cash=D(1_000_000),
    )
    exchange = PaperExchange(settings_, clock, ("AAPL", "MSFT"))
    exchange.set_price("AAPL", D(100))
    exchange.set_price("MSFT", D(200))
    ledger = await Ledger.open(root / "ledger.db")
    broker = LandingBroker(exchange, ledger, clock)
    return Desk(ledger, exchange, broker, clock, Reconciler(ledger, broker, clock, STRATEGIES))


async def close_desk(desk: Desk) -> None:
    await desk.broker.close()
    await desk.ledger.close()
    desk.exchange.close()


async def busy_run(root: Path, plan: list[Landing], holding: int = 3) -> tuple[Desk, list[tuple[str, str]]]:
    """Both sides agree on a position first; then one run with the plan's trades landing between its
    reads; then the desk and the position mismatches that run opened."""
    desk = await open_desk(root)
    if holding:
        await desk.broker.land(Landing("setup", 0, "AAPL", holding))
        await desk.broker.land(Landing("setup", 0, "MSFT", holding))
    assert (await desk.reconciler.run("startup")).clean
    desk.broker.calls.clear()
    desk.broker.plan = plan
    await desk.reconciler.run("periodic")
    return desk, await desk.mismatches()


async def test_fills_landing_after_the_position_read_of_both_passes_are_no_mismatch(tmp_path: Path) -> None:
    """A trade landing right after each of two position reads (the confirmation caught in flight twice,
    as in the soak) opens no incident: the old reconciler opened "ledger 4, broker 3"."""
    plan = [Landing("positions", 1), Landing("positions", 2)]
    desk, mismatches = await busy_run(tmp_path, plan)
    try:
        assert desk.broker.landed == 4, "both trades landed during the run"
        assert mismatches == []
        assert not (await desk.ledger.control_state()).is_paused("sma-aapl")
        assert (await desk.reconciler.run("periodic")).clean
        assert (
            await desk.ledger.account_positions() == await desk.broker_positions() == {"AAPL": 5, "MSFT": 3}
        )
    finally:
        await close_desk(desk)


async def test_a_fill_the_ledger_has_and_the_broker_reported_after_its_reads_is_left_out(
    tmp_path: Path,
) -> None:
    """A trade landing after the broker's last fill read is in the ledger, not in the broker's report:
    the comparison leaves it out (the run says how many) instead of accusing the ledger of holding more."""
    desk, mismatches = await busy_run(tmp_path, [Landing("fills", 2, "MSFT", 2)])
    try:
        assert mismatches == []
        last = await desk.ledger.last_reconciliation()
        assert last is not None and last.clean
        assert last.summary["fills_after_broker_read"] == 1
        assert (
            await desk.ledger.account_positions() == await desk.broker_positions() == {"AAPL": 3, "MSFT": 5}
        )
    finally:
        await close_desk(desk)


async def test_a_fill_landing_between_the_brokers_fill_and_position_reads_is_read_again(
    tmp_path: Path,
) -> None:
    """A trade landing after the broker's fills were listed but before its positions were read makes the
    reconciler read both again, so the positions it judges are those of the fills it has."""
    desk, mismatches = await busy_run(tmp_path, [Landing("fills", 1, delivered=False)])
    try:
        assert mismatches == []
        assert desk.broker.calls["fills"] == 3, "listed, read again after the move, settled"
        assert (
            await desk.ledger.account_positions() == await desk.broker_positions() == {"AAPL": 4, "MSFT": 3}
        )
    finally:
        await close_desk(desk)


async def test_a_ledger_fill_the_broker_never_had_is_still_a_mismatch_while_fills_land(
    tmp_path: Path,
) -> None:
    """A genuine difference (the ledger holds a fill the broker never executed) still opens
    position_mismatch and pauses the strategy, with trades landing between the reads all the while."""
    busy = [Landing(read, n, "MSFT") for read in READS for n in (1, 2, 3)]
    early = [Landing(read, n, "AAPL") for read in ("account", "list_orders") for n in (1, 2)]
    desk = await open_desk(tmp_path)
    try:
        await desk.broker.land(Landing("setup", 0, "AAPL", 3))
        await desk.broker.land(Landing("setup", 0, "AAPL", 4, at_broker=False))
        desk.broker.calls.clear()
        desk.broker.plan = busy + early
        outcome = await desk.reconciler.run("startup")
        assert not outcome.clean
        assert [s for s, _ in await desk.mismatches()] == ["AAPL"]
        (incident,) = [i for i in await desk.ledger.incidents() if i.kind == "position_mismatch"]
        assert D(incident.details["difference"]) == D(-4)
        assert (await desk.ledger.control_state()).is_paused("sma-aapl")
    finally:
        await close_desk(desk)


async def test_a_ledger_fill_appended_during_a_run_is_judged_by_the_next_run(tmp_path: Path) -> None:
    """A phantom fill the ledger gains after the broker was read is left out of that run only: the next
    run, its cursor past the phantom, opens position_mismatch."""
    desk, mismatches = await busy_run(tmp_path, [Landing("fills", 2, "MSFT", 2, at_broker=False)])
    try:
        assert mismatches == []
        second = await desk.reconciler.run("periodic")
        assert not second.clean
        assert [s for s, _ in await desk.mismatches()] == ["MSFT"]
        assert (await desk.ledger.control_state()).is_paused("sma-msft")
    finally:
        await close_desk(desk)


landings = st.builds(
    Landing,
    read=st.sampled_from(READS),
    occurrence=st.integers(min_value=1, max_value=3),
    symbol=st.sampled_from(("AAPL", "MSFT")),
    qty=st.integers(min_value=1, max_value=3),
    delivered=st.booleans(),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(plan=[Landing("positions", 1), Landing("positions", 2, "AAPL", 2, delivered=False)], holding=1)
@given(plan=st.lists(landings, max_size=10), holding=st.integers(min_value=0, max_value=3))
def test_no_plan_of_trades_landing_between_reads_opens_a_position_mismatch(
    plan: list[Landing], holding: int
) -> None:
    """Whatever broker reads trades land after (delivered to the ledger or lost), a run opens no
    position_mismatch, and a quiet run after it finds both sides holding the same."""

    async def scenario(root: Path) -> None:
        desk, mismatches = await busy_run(root, plan, holding)
        try:
            assert mismatches == []
            desk.broker.plan = []
            quiet = await desk.reconciler.run("periodic")
            assert [i for i in quiet.summary["incidents"] if i["kind"] == "position_mismatch"] == []
            assert await desk.ledger.account_positions() == await desk.broker_positions()
        finally:
            await close_desk(desk)

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(scenario(Path(tmp)))
