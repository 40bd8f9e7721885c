"""The paper exchange's own behaviour: pricing, fees, partial fills, time in force, persistence."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoquant.brokers.paper.engine import PaperExchange, end_of_utc_day_ns
from autoquant.clocks import FakeClock
from autoquant.domain.bars import Bar
from autoquant.domain.broker import BrokerOrderState, OrderRequest
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce
from autoquant.errors import BrokerNotFound, BrokerRejected, DuplicateClientOrderId
from autoquant.runtime.config import PaperSettings

D = Decimal
SYMBOLS = ("AAPL", "MSFT", "BTC/USD")
Factory = Callable[..., PaperExchange]


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock) -> Iterator[Factory]:
    """Build exchanges on one state file (same path = a restart); all are closed at the end."""
    opened: list[PaperExchange] = []

    def factory(**overrides: Any) -> PaperExchange:
        values: dict[str, Any] = {
            "state_path": tmp_path / "paper" / "state.db",
            "latency_s": 0.05,
            "slippage_bps": D(0),
            "fee_bps": D(0),
            "partial_fill_probability": 0.0,
            "starting_cash": D(100_000),
        }
        values.update(overrides)
        exchange = PaperExchange(PaperSettings(**values), clock, SYMBOLS)
        opened.append(exchange)
        return exchange

    yield factory
    for exchange in opened:
        exchange.close()


def order(
    coid: str,
    side: str = "buy",
    qty: str = "10",
    *,
    limit: str | None = None,
    tif: TimeInForce = TimeInForce.DAY,
    symbol: str = "AAPL",
) -> OrderRequest:
    return OrderRequest(
        client_order_id=coid,
        symbol=symbol,
        side=Side(side),
        qty=D(qty),
        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
        limit_price=D(limit) if limit else None,
        time_in_force=tif,
    )


def settle(exchange: PaperExchange, clock: FakeClock, seconds: float = 0.05) -> list[OrderEventKind]:
    clock.advance(seconds)
    return [update.kind for update in exchange.process()]


def test_orders_fill_only_after_the_latency(make: Factory, clock: FakeClock) -> None:
    """A market order is accepted at submit and fills no earlier than latency_s later."""
    exchange = make(latency_s=0.2)
    exchange.set_price("AAPL", D(100))
    state = exchange.submit(order("o1"))
    assert state.status is OrderStatus.ACCEPTED
    assert exchange.next_due_ns() == state.created_ns + 200_000_000
    assert settle(exchange, clock, 0.1) == []
    assert settle(exchange, clock, 0.1) == [OrderEventKind.FILL]
    assert exchange.next_due_ns() is None


def test_slippage_makes_buys_pay_up_and_sells_receive_less(make: Factory, clock: FakeClock) -> None:
    """Slippage is against the taker on both sides, quantized to 0.0001."""
    exchange = make(slippage_bps=D(10))
    exchange.set_price("AAPL", D("100"))
    exchange.submit(order("buy"))
    settle(exchange, clock)
    exchange.submit(order("sell", "sell"))
    settle(exchange, clock)
    buy, sell = exchange.fills()
    assert buy.price == D("100.1000")
    assert sell.price == D("99.9000")


def test_fees_come_out_of_cash_on_both_sides(make: Factory, clock: FakeClock) -> None:
    """A fee of fee_bps of the notional is charged on buys and sells; cash moves by exactly that."""
    exchange = make(fee_bps=D(25))
    exchange.set_price("AAPL", D("123.45"))
    exchange.submit(order("buy", qty="3"))
    settle(exchange, clock)
    (buy,) = exchange.fills()
    assert buy.fee == D("0.9259")  # 370.35 * 0.0025 = 0.925875, half up
    assert exchange.account().cash == D(100_000) - D("370.35") - D("0.9259")
    exchange.set_price("AAPL", D("130"))
    exchange.submit(order("sell", "sell", qty="3"))
    settle(exchange, clock)
    assert exchange.fills()[1].fee == D("0.9750")
    assert exchange.account().cash == D(100_000) - D("370.35") - D("0.9259") + D("390") - D("0.9750")
    assert exchange.positions() == []


def test_a_market_order_waits_for_the_first_price(make: Factory, clock: FakeClock) -> None:
    """With no price for the symbol, a market order keeps working and fills when one arrives."""
    exchange = make()
    exchange.submit(order("o1", tif=TimeInForce.GTC))
    assert settle(exchange, clock, 5) == []
    assert exchange.next_due_ns() is None  # nothing is due until a price arrives
    updates = exchange.set_price("AAPL", D("50"))
    assert [u.kind for u in updates] == [OrderEventKind.FILL]
    assert updates[0].fill is not None
    assert updates[0].fill.price == D("50")


def test_a_partial_fill_leaves_a_remainder_that_fills_later(make: Factory, clock: FakeClock) -> None:
    """With partial_fill_probability 1 the first execution is part of the order; the rest fills later."""
    exchange = make(partial_fill_probability=1.0)
    exchange.set_price("AAPL", D(100))
    state = exchange.submit(order("o1", qty="10"))
    clock.advance(0.05)
    first = exchange.process()
    assert [u.kind for u in first] == [OrderEventKind.PARTIAL_FILL]
    part = first[0].order
    assert part.status is OrderStatus.PARTIALLY_FILLED
    assert D(2) <= part.filled_qty <= D(8)
    assert [o.broker_order_id for o in exchange.list_orders()] == [state.broker_order_id]
    assert exchange.process() == []  # the remainder waits another latency
    exchange.set_price("AAPL", D(101))
    rest = settle(exchange, clock)
    assert rest == [OrderEventKind.FILL]
    fills = exchange.fills()
    assert sum(f.qty for f in fills) == D(10)
    assert exchange.position_qty("AAPL") == D(10)
    final = exchange.get_order(state.broker_order_id)
    assert final is not None
    assert final.status is OrderStatus.FILLED
    assert final.filled_avg_price == (fills[0].qty * 100 + fills[1].qty * 101) / 10


def test_one_unit_orders_are_never_split(make: Factory, clock: FakeClock) -> None:
    """An order of one unit of its smallest digit fills whole even when partials are certain."""
    exchange = make(partial_fill_probability=1.0)
    exchange.set_price("AAPL", D(100))
    exchange.submit(order("one", qty="1"))
    exchange.submit(order("tenth", qty="0.1"))
    assert settle(exchange, clock) == [OrderEventKind.FILL, OrderEventKind.FILL]


def test_limit_orders_fill_only_when_marketable(make: Factory, clock: FakeClock) -> None:
    """A buy limit fills at or below its limit, a sell limit at or above, never at a worse price."""
    exchange = make(slippage_bps=D(10))
    exchange.set_price("AAPL", D(100))
    exchange.submit(order("buy", limit="99", tif=TimeInForce.GTC))
    assert settle(exchange, clock) == []
    updates = exchange.set_price("AAPL", D("98.95"))
    assert [u.kind for u in updates] == [OrderEventKind.FILL]
    assert updates[0].fill is not None
    assert updates[0].fill.price == D("99")  # 98.95 slipped is 99.0490: capped at the limit
    exchange.submit(order("sell", "sell", limit="105", tif=TimeInForce.GTC))
    assert exchange.set_price("AAPL", D("104.99")) == []
    assert settle(exchange, clock) == []
    updates = exchange.set_price("AAPL", D("110"))
    assert updates[0].fill is not None
    assert updates[0].fill.price == D("109.8900")  # better than the limit: the slipped price


def test_day_orders_expire_at_the_end_of_the_utc_day(make: Factory, clock: FakeClock) -> None:
    """A day order expires at the next 00:00 UTC after its creation; a gtc order keeps working."""
    clock.set(datetime(2024, 3, 5, 23, 0, tzinfo=UTC))
    exchange = make()
    day = exchange.submit(order("day", limit="1"))
    gtc = exchange.submit(order("gtc", limit="1", tif=TimeInForce.GTC))
    midnight = end_of_utc_day_ns(day.created_ns)
    assert midnight == int(datetime(2024, 3, 6, tzinfo=UTC).timestamp()) * 1_000_000_000
    assert settle(exchange, clock, 1) == []
    assert exchange.next_due_ns() == midnight
    assert settle(exchange, clock, 3598) == []
    updates = settle(exchange, clock, 1)
    assert updates == [OrderEventKind.EXPIRED]
    expired = exchange.get_order(day.broker_order_id)
    assert expired is not None
    assert expired.status is OrderStatus.EXPIRED
    assert expired.raw_status == "expired"
    assert [o.broker_order_id for o in exchange.list_orders()] == [gtc.broker_order_id]


def test_ioc_fills_what_it_can_and_cancels_the_rest(make: Factory, clock: FakeClock) -> None:
    """An ioc order is decided at its first due process: a partial fill, then a cancel of the rest."""
    exchange = make(partial_fill_probability=1.0)
    exchange.set_price("AAPL", D(100))
    exchange.submit(order("ioc", qty="10", tif=TimeInForce.IOC))
    assert settle(exchange, clock) == [OrderEventKind.PARTIAL_FILL, OrderEventKind.CANCELED]
    exchange.submit(order("ioc-unmarketable", limit="90", tif=TimeInForce.IOC))
    assert settle(exchange, clock) == [OrderEventKind.CANCELED]
    exchange.submit(order("ioc-no-price", symbol="MSFT", tif=TimeInForce.IOC))
    assert settle(exchange, clock) == [OrderEventKind.CANCELED]
    assert exchange.list_orders() == []


def test_fok_fills_all_or_nothing(make: Factory, clock: FakeClock) -> None:
    """A fok order is never partially filled: it fills whole or is canceled."""
    exchange = make(partial_fill_probability=1.0)
    exchange.set_price("AAPL", D(100))
    exchange.submit(order("fok", qty="10", tif=TimeInForce.FOK))
    assert settle(exchange, clock) == [OrderEventKind.FILL]
    exchange.submit(order("fok-unmarketable", limit="90", tif=TimeInForce.FOK))
    assert settle(exchange, clock) == [OrderEventKind.CANCELED]


def test_refusals_at_submit(make: Factory) -> None:
    """Duplicates 422/40010001, unknown symbols 422, short sells and overspending 403/40310000."""
    exchange = make(starting_cash=D(1000))
    exchange.set_price("AAPL", D(100))
    exchange.submit(order("o1", qty="5"))
    with pytest.raises(DuplicateClientOrderId) as duplicate:
        exchange.submit(order("o1", qty="1"))
    assert (duplicate.value.status, duplicate.value.code) == (422, 40010001)
    with pytest.raises(BrokerRejected) as unknown:
        exchange.submit(order("o2", symbol="ZZZZ"))
    assert unknown.value.status == 422
    assert "unknown symbol" in str(unknown.value)
    with pytest.raises(BrokerRejected) as broke:
        exchange.submit(order("o3", qty="6"))  # 500 already committed to o1
    assert (broke.value.status, broke.value.code) == (403, 40310000)
    assert "insufficient buying power" in str(broke.value)
    with pytest.raises(BrokerRejected) as short:
        exchange.submit(order("o4", "sell", qty="1"))
    assert (short.value.status, short.value.code) == (403, 40310000)
    assert "insufficient qty available" in str(short.value)
    assert exchange.get_by_client_order_id("o3") is None


def test_open_sells_count_against_the_position(make: Factory, clock: FakeClock) -> None:
    """A second sell may not sell what an open sell already commits."""
    exchange = make()
    exchange.set_price("AAPL", D(100))
    exchange.submit(order("buy", qty="10"))
    settle(exchange, clock)
    exchange.submit(order("sell1", "sell", qty="6", limit="200"))
    with pytest.raises(BrokerRejected):
        exchange.submit(order("sell2", "sell", qty="5"))
    exchange.submit(order("sell3", "sell", qty="4"))


def test_a_market_buy_without_cash_at_fill_time_is_rejected(make: Factory, clock: FakeClock) -> None:
    """A market buy accepted before any price is rejected if the cash is not there when it fills."""
    exchange = make(starting_cash=D(1000))
    exchange.submit(order("o1", qty="10"))
    clock.advance(1)
    updates = exchange.set_price("AAPL", D(101))
    assert [u.kind for u in updates] == [OrderEventKind.REJECTED]
    assert exchange.account().cash == D(1000)


def test_cancel_emits_canceled_and_refuses_final_or_unknown_orders(make: Factory, clock: FakeClock) -> None:
    """Cancel of an open order emits CANCELED; of a final order 422; of an unknown id 404."""
    exchange = make()
    queue = exchange.subscribe()
    state = exchange.submit(order("o1", limit="1"))
    canceled = exchange.cancel(state.broker_order_id)
    assert canceled.status is OrderStatus.CANCELED
    kinds = [queue.get_nowait().kind for _ in range(queue.qsize())]
    assert kinds == [OrderEventKind.ACCEPTED, OrderEventKind.CANCELED]
    with pytest.raises(BrokerRejected) as final:
        exchange.cancel(state.broker_order_id)
    assert final.value.status == 422
    with pytest.raises(BrokerNotFound) as unknown:
        exchange.cancel("no-such-order")
    assert (unknown.value.status, unknown.value.code) == (404, 40410000)


def test_cancel_all_cancels_every_open_order(make: Factory) -> None:
    """cancel_all returns each open order with status 200 and leaves none open."""
    exchange = make()
    ids = {exchange.submit(order(f"o{i}", limit="1")).broker_order_id for i in range(3)}
    assert {order_id for order_id, status in exchange.cancel_all() if status == 200} == ids
    assert exchange.list_orders() == []


def test_list_orders_filters(make: Factory, clock: FakeClock) -> None:
    """list_orders filters by open/closed, creation time (after and until both exclusive, as at Alpaca),
    symbol."""
    exchange = make()
    first = exchange.submit(order("a", limit="1"))
    clock.advance(1)
    second = exchange.submit(order("b", limit="1", symbol="MSFT"))
    exchange.cancel(second.broker_order_id)

    def ids(states: list[BrokerOrderState]) -> list[str]:
        return [s.client_order_id for s in states]

    assert ids(exchange.list_orders()) == ["a"]
    assert ids(exchange.list_orders(status="closed")) == ["b"]
    assert ids(exchange.list_orders(status="all")) == ["b", "a"]
    assert ids(exchange.list_orders(status="all", direction="asc")) == ["a", "b"]
    assert ids(exchange.list_orders(status="all", after_ns=first.created_ns)) == ["b"]
    assert ids(exchange.list_orders(status="all", until_ns=first.created_ns)) == []
    assert ids(exchange.list_orders(status="all", until_ns=second.created_ns)) == ["a"]
    assert ids(exchange.list_orders(status="all", symbols=["MSFT"])) == ["b"]
    assert ids(exchange.list_orders(status="all", limit=1)) == ["b"]


def test_ten_fills_of_a_tenth_make_exactly_one(make: Factory, clock: FakeClock) -> None:
    """Quantities and cash are exact decimals: ten buys of 0.1 at 0.1 make a position of exactly 1."""
    exchange = make()
    exchange.set_price("BTC/USD", D("0.1"))
    for i in range(10):
        exchange.submit(order(f"o{i}", qty="0.1", symbol="BTC/USD", tif=TimeInForce.GTC))
    settle(exchange, clock)
    assert exchange.position_qty("BTC/USD") == D("1")
    assert exchange.account().cash == D("99999.9")
    (position,) = exchange.positions()
    assert position.qty == D(1)
    assert position.avg_entry_price == D("0.1")


def test_bars_set_the_price(make: Factory, clock: FakeClock) -> None:
    """on_bar takes the bar's close as the symbol's price and works the orders."""
    exchange = make()
    exchange.submit(order("o1"))
    clock.advance(1)
    bar = Bar(
        symbol="AAPL",
        open_time=datetime(2024, 1, 2, 15, 0, tzinfo=UTC),
        close_time=datetime(2024, 1, 2, 15, 1, tzinfo=UTC),
        open=D(10),
        high=D(12),
        low=D(9),
        close=D(11),
        volume=D(100),
        source="test",
    )
    updates = exchange.on_bar(bar)
    assert exchange.last_price("AAPL") == D(11)
    assert updates[0].fill is not None
    assert updates[0].fill.price == D(11)


def test_state_survives_a_restart_and_working_orders_keep_working(make: Factory, clock: FakeClock) -> None:
    """Cash, positions, fills, prices and open orders are restored; a working order fills after reopening."""
    exchange = make(fee_bps=D(10))
    exchange.set_price("AAPL", D(100))
    exchange.submit(order("filled", qty="2"))
    settle(exchange, clock)
    working = exchange.submit(order("working", qty="3", limit="95", tif=TimeInForce.GTC))
    before = (exchange.account(), exchange.positions(), exchange.fills())
    exchange.close()

    reopened = make(fee_bps=D(10), starting_cash=D(1))
    assert (reopened.account(), reopened.positions(), reopened.fills()) == before
    assert reopened.last_price("AAPL") == D(100)
    assert [o.client_order_id for o in reopened.list_orders()] == ["working"]
    with pytest.raises(DuplicateClientOrderId):
        reopened.submit(order("working", qty="3"))
    clock.advance(1)
    updates = reopened.set_price("AAPL", D(95))
    assert [u.kind for u in updates] == [OrderEventKind.FILL]
    assert updates[0].order.broker_order_id == working.broker_order_id
    assert reopened.position_qty("AAPL") == D(5)
    logged = [(u.kind, u.order.client_order_id) for _, u in reopened.updates_after(0)]
    assert logged == [
        (OrderEventKind.ACCEPTED, "filled"),
        (OrderEventKind.FILL, "filled"),
        (OrderEventKind.ACCEPTED, "working"),
        (OrderEventKind.FILL, "working"),
    ]


def test_outcomes_are_deterministic_under_the_seed(make: Factory, clock: FakeClock, tmp_path: Path) -> None:
    """The same seed and client order ids give the same fills; splits depend on (seed, id) only."""

    def run(path: Path, seed: int) -> list[tuple[str, Decimal]]:
        exchange = make(state_path=path, seed=seed, partial_fill_probability=0.5)
        exchange.set_price("AAPL", D(100))
        for i in range(20):
            exchange.submit(order(f"o{i}", qty="10"))
        settle(exchange, clock)
        settle(exchange, clock)
        exchange.close()
        return [(f.client_order_id, f.qty) for f in exchange_fills(path, seed)]

    def exchange_fills(path: Path, seed: int) -> list[Any]:
        reopened = make(state_path=path, seed=seed)
        return reopened.fills()

    first = run(tmp_path / "a.db", 7)
    again = run(tmp_path / "b.db", 7)
    other = run(tmp_path / "c.db", 8)
    assert first == again
    assert len(first) > 20  # some orders were split
    assert sorted(first) != sorted(other)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["buy", "sell"]),
            st.decimals(min_value=D("0.001"), max_value=D(50), places=3),
            st.decimals(min_value=D("0.5"), max_value=D(500), places=2),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_cash_and_positions_are_exact_sums_over_the_fills(
    make: Factory, clock: FakeClock, tmp_path: Path, steps: list[tuple[str, Decimal, Decimal]]
) -> None:
    """Whatever is traded, cash and position equal the exact sums over the executions, never short."""
    path = tmp_path / f"prop-{uuid.uuid4().hex}.db"
    exchange = make(state_path=path, slippage_bps=D(7), fee_bps=D(3), partial_fill_probability=0.5)
    for i, (side, qty, price) in enumerate(steps):
        exchange.set_price("AAPL", price)
        with contextlib.suppress(BrokerRejected):
            exchange.submit(order(f"o{i}", side, str(qty), tif=TimeInForce.GTC))
        settle(exchange, clock)
        settle(exchange, clock)
        assert exchange.position_qty("AAPL") >= 0
    fills = exchange.fills()
    signed = sum((f.qty if f.side is Side.BUY else -f.qty for f in fills), D(0))
    spent = sum((f.qty * f.price * (1 if f.side is Side.BUY else -1) + f.fee for f in fills), D(0))
    assert exchange.position_qty("AAPL") == signed
    assert exchange.account().cash == D(100_000) - spent
    assert exchange.list_orders() == []


def test_last_price_writes_wait_for_the_next_commit_yet_reads_and_restarts_see_them(
    make: Factory, clock: FakeClock
) -> None:
    """Prices and equity points are written with the next commit, yet the equity history read right
    after a price shows the minute's latest point, and a restart after close has the last price."""
    exchange = make()
    exchange.set_price("AAPL", D(100))
    exchange.submit(order("a", qty="10"))
    settle(exchange, clock)  # the fill commits with the unsaved price
    exchange.set_price("AAPL", D(110))  # no fill: only in memory until the next write or read
    history = exchange.equity_history()
    assert history[-1][1] == exchange.account().equity == D(100_000) + D(100)  # 10 x (110 - 100)
    clock.advance(120)
    exchange.set_price("AAPL", D(90))
    exchange.close()

    reopened = make()
    assert reopened.last_price("AAPL") == D(90)
    assert reopened.equity_history()[-1][1] == D(100_000) - D(100)


def test_last_price_writes_wait_at_most_until_the_minute_turns(
    make: Factory, clock: FakeClock, tmp_path: Path
) -> None:
    """Without orders, prices and equity points still reach the file once their minute has ended, so
    a crash loses at most the current minute's (read here through a second connection, as after one)."""
    exchange = make()
    state = tmp_path / "paper" / "state.db"

    def stored() -> tuple[list[tuple[str]], list[tuple[int, int]]]:
        with contextlib.closing(sqlite3.connect(state)) as db:
            prices = db.execute("SELECT price FROM prices WHERE symbol = 'AAPL'").fetchall()
            return prices, db.execute("SELECT minute, ts_ns FROM equity ORDER BY minute").fetchall()

    before = stored()
    first_minute = clock.now_ns() // 60_000_000_000
    exchange.set_price("AAPL", D(100))
    exchange.set_price("AAPL", D(101))
    assert stored() == before  # within the minute: in memory only
    clock.advance(60)
    exchange.set_price("AAPL", D(102))
    prices, points = stored()
    # The ended minute's point, and this one's.
    assert prices == [("102",)] and [m for m, _ in points][-2:] == [first_minute, first_minute + 1]


def test_a_scratch_venue_skips_syncs_and_keeps_the_same_rows(tmp_path: Path, clock: FakeClock) -> None:
    """``durable=False`` (a backtest's venue) runs its file with synchronous=OFF, the default with NORMAL;
    both write the same state, which a reopened exchange restores."""
    states = []
    for durable in (True, False):
        settings = PaperSettings(
            state_path=tmp_path / f"{durable}.db",
            latency_s=0,
            slippage_bps=D(0),
            partial_fill_probability=0.0,
        )
        exchange = PaperExchange(settings, clock, SYMBOLS, durable=durable)
        sync = exchange._store._sqlite.execute("PRAGMA synchronous").fetchone()[0]
        assert sync == (1 if durable else 0)  # NORMAL, OFF
        exchange.set_price("AAPL", D(100))
        exchange.submit(order("o1"))
        settle(exchange, clock, 0)
        exchange.close()
        reopened = PaperExchange(settings, clock, SYMBOLS)
        states.append((reopened.account().cash, reopened.list_orders(status="all")[0].status))
        reopened.close()
    assert states[0] == states[1] == (D(99_000), OrderStatus.FILLED)
