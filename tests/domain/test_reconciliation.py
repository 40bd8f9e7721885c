"""The pure reconciliation diff: repairs converge the ledger to the broker, everything else is an incident."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from autoquant.domain.broker import BrokerAccount, BrokerOrderState, BrokerPosition
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order, OrderStatus, apply
from autoquant.domain.reconciliation import (
    BrokerReport,
    CashBaseline,
    LedgerView,
    ReconciliationResult,
    diff,
    event_for_state,
)
from autoquant.domain.values import OrderType, Side, TimeInForce

D = Decimal
NOW = 1_700_000_000 * 1_000_000_000
SECOND = 1_000_000_000
STRATEGIES = {"AAPL": frozenset({"s-aapl"}), "MSFT": frozenset({"s-msft"}), "BTC/USD": frozenset({"a", "b"})}


def state(
    coid: str,
    status: OrderStatus = OrderStatus.ACCEPTED,
    *,
    filled: str = "0",
    qty: str = "10",
    symbol: str = "AAPL",
    side: Side = Side.BUY,
) -> BrokerOrderState:
    return BrokerOrderState(
        broker_order_id=f"b-{coid}",
        client_order_id=coid,
        symbol=symbol,
        side=side,
        qty=D(qty),
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.DAY,
        status=status,
        filled_qty=D(filled),
        created_ns=NOW,
        updated_ns=NOW,
    )


def ledger_order(
    coid: str,
    status: OrderStatus = OrderStatus.ACCEPTED,
    *,
    filled: str = "0",
    qty: str = "10",
    symbol: str = "AAPL",
    side: Side = Side.BUY,
) -> Order:
    strategy = sorted(STRATEGIES[symbol])[0]
    return Order(
        client_order_id=coid,
        strategy_id=strategy,
        symbol=symbol,
        side=side,
        qty=D(qty),
        status=status,
        filled_qty=D(filled),
        broker_order_id=None if status is OrderStatus.RESERVED else f"b-{coid}",
        created_ns=NOW,
    )


def fill(
    exec_id: str,
    coid: str,
    qty: str,
    *,
    price: str = "100",
    symbol: str = "AAPL",
    side: Side = Side.BUY,
    at: int = NOW,
    fee: str = "0",
) -> Fill:
    return Fill(
        execution_id=exec_id,
        client_order_id=coid,
        broker_order_id=f"b-{coid}",
        symbol=symbol,
        side=side,
        qty=D(qty),
        price=D(price),
        fee=D(fee),
        broker_ts_ns=at,
        local_ts_ns=at,
    )


def kinds(result: ReconciliationResult) -> list[tuple[str, str, str]]:
    return [(i.kind, i.subject, i.scope) for i in result.incidents]


def test_event_for_state_maps_every_broker_status_to_the_event_that_reaches_it() -> None:
    """Applying event_for_state to a fresh order lands on the broker's status (the one shared mapping)."""
    for status in (
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
        OrderStatus.PENDING_CANCEL,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.REJECTED,
        OrderStatus.REPLACED,
    ):
        filled = {"partially_filled": "4", "filled": "10"}.get(status.value, "0")
        after = apply(
            ledger_order("o1", OrderStatus.RESERVED), event_for_state(state("o1", status, filled=filled), NOW)
        )
        assert (after.status, after.filled_qty) == (status, D(filled))


def test_a_missed_fill_of_a_known_order_is_appended_and_explains_the_position() -> None:
    """A broker fill with an execution id the ledger lacks is a repair, not a position mismatch."""
    view = LedgerView(open_orders=(ledger_order("o1"),), strategies_by_symbol=STRATEGIES)
    report = BrokerReport(
        order_states={"o1": state("o1", OrderStatus.FILLED, filled="10")},
        fills=(fill("x1", "o1", "10"),),
        positions=(BrokerPosition(symbol="AAPL", qty=D(10), avg_entry_price=D(100)),),
        as_of_ns=NOW,
    )
    result = diff(view, report)
    assert [f.execution_id for f in result.fills_to_append] == ["x1"]
    assert [(e.client_order_id, e.kind.value, e.filled_qty) for e in result.events_to_apply] == [
        ("o1", "fill", D(10))
    ]
    assert result.clean


def test_a_fill_the_ledger_already_has_is_not_appended_again() -> None:
    """Known execution ids are skipped, and a duplicate in the broker's own list is appended once."""
    view = LedgerView(
        open_orders=(ledger_order("o1", OrderStatus.PARTIALLY_FILLED, filled="4"),),
        execution_ids=frozenset({"x1"}),
        positions={"AAPL": D(4)},
        strategies_by_symbol=STRATEGIES,
    )
    report = BrokerReport(
        order_states={"o1": state("o1", OrderStatus.FILLED, filled="10")},
        fills=(fill("x1", "o1", "4"), fill("x2", "o1", "6"), fill("x2", "o1", "6")),
        positions=(BrokerPosition(symbol="AAPL", qty=D(10), avg_entry_price=D(100)),),
        as_of_ns=NOW,
    )
    result = diff(view, report)
    assert [f.execution_id for f in result.fills_to_append] == ["x2"]
    assert result.clean


def test_reserved_and_unknown_orders_the_broker_lacks_are_left_to_the_execution_worker() -> None:
    """Only an acknowledged order that the broker does not know is a missing_order incident."""
    orders = (
        ledger_order("r1", OrderStatus.RESERVED),
        ledger_order("u1", OrderStatus.UNKNOWN),
        ledger_order("a1", OrderStatus.ACCEPTED),
        ledger_order("p1", OrderStatus.PENDING_CANCEL),
    )
    report = BrokerReport(order_states={o.client_order_id: None for o in orders}, as_of_ns=NOW)
    result = diff(LedgerView(open_orders=orders, strategies_by_symbol=STRATEGIES), report)
    assert kinds(result) == [("missing_order", "a1", "s-aapl"), ("missing_order", "p1", "s-aapl")]
    assert result.events_to_apply == ()
    assert "autoquant resume --strategy s-aapl" in result.incidents[0].action


def test_an_order_the_ledger_never_reserved_is_an_account_wide_incident() -> None:
    """An open order or a fill under an unknown client order id is one unknown_order per broker order."""
    report = BrokerReport(
        open_orders=(state("stranger", OrderStatus.PARTIALLY_FILLED, filled="3"),),
        fills=(fill("x9", "stranger", "3"), fill("x10", "other", "1", symbol="MSFT")),
        positions=(
            BrokerPosition(symbol="AAPL", qty=D(3), avg_entry_price=D(100)),
            BrokerPosition(symbol="MSFT", qty=D(1), avg_entry_price=D(100)),
        ),
        as_of_ns=NOW,
    )
    result = diff(LedgerView(open_orders=(), strategies_by_symbol=STRATEGIES), report)
    assert kinds(result) == [
        ("unknown_order", "b-stranger", "account"),
        ("unknown_order", "b-other", "account"),
    ]
    assert result.fills_to_append == ()
    assert result.incidents[0].details["execution_ids"] == ["x9"]


def test_a_closed_ledger_order_still_working_at_the_broker_is_an_incident() -> None:
    """The ledger says CANCELED, the broker still has the order open: cancel it there."""
    known = ledger_order("c1", OrderStatus.CANCELED)
    report = BrokerReport(open_orders=(state("c1"),), as_of_ns=NOW)
    result = diff(
        LedgerView(open_orders=(), known_orders={"c1": known}, strategies_by_symbol=STRATEGIES), report
    )
    assert kinds(result) == [("order_open_at_broker", "c1", "s-aapl")]


def test_a_late_fill_of_a_closed_order_is_appended_and_advances_it() -> None:
    """A fill that beat the cancel at the venue moves a CANCELED ledger order to FILLED with its fill."""
    known = ledger_order("c1", OrderStatus.CANCELED)
    report = BrokerReport(
        order_states={"c1": state("c1", OrderStatus.FILLED, filled="10")},
        fills=(fill("x1", "c1", "10"),),
        positions=(BrokerPosition(symbol="AAPL", qty=D(10), avg_entry_price=D(100)),),
        as_of_ns=NOW,
    )
    result = diff(
        LedgerView(open_orders=(), known_orders={"c1": known}, strategies_by_symbol=STRATEGIES), report
    )
    assert [f.execution_id for f in result.fills_to_append] == ["x1"]
    assert [e.kind.value for e in result.events_to_apply] == ["fill"]
    assert result.clean


def test_an_event_the_table_refuses_is_an_incident_not_a_repair() -> None:
    """A REJECTED ledger order that the broker shows partially filled is an illegal_transition."""
    known = ledger_order("j1", OrderStatus.REJECTED)
    report = BrokerReport(
        order_states={"j1": state("j1", OrderStatus.PARTIALLY_FILLED, filled="2")},
        fills=(fill("x1", "j1", "2"),),
        positions=(BrokerPosition(symbol="AAPL", qty=D(2), avg_entry_price=D(100)),),
        as_of_ns=NOW,
    )
    result = diff(
        LedgerView(open_orders=(), known_orders={"j1": known}, strategies_by_symbol=STRATEGIES), report
    )
    assert kinds(result) == [("illegal_transition", "j1:partial_fill", "s-aapl")]
    assert [f.execution_id for f in result.fills_to_append] == ["x1"]  # the fill happened regardless
    assert result.events_to_apply == ()


def test_a_position_difference_names_its_only_strategy_or_else_the_account() -> None:
    """position_mismatch is scoped to the one strategy trading the symbol, else to the account."""
    view = LedgerView(
        open_orders=(), positions={"AAPL": D(5), "BTC/USD": D("0.5")}, strategies_by_symbol=STRATEGIES
    )
    report = BrokerReport(
        positions=(BrokerPosition(symbol="MSFT", qty=D(2), avg_entry_price=D(1)),), as_of_ns=NOW
    )
    result = diff(view, report)
    assert kinds(result) == [
        ("position_mismatch", "AAPL", "s-aapl"),
        ("position_mismatch", "BTC/USD", "account"),
        ("position_mismatch", "MSFT", "s-msft"),
    ]
    assert result.incidents[0].details["difference"] == "-5"


def test_cash_moved_by_exactly_the_fills_since_the_baseline_is_clean() -> None:
    """Buys pay notional plus fee, sells receive notional minus fee; that sum explains the cash move."""
    since = NOW - 60 * SECOND
    ledger_fills = (
        fill("x1", "o1", "2", price="100", at=since + 10 * SECOND, fee="0.5"),
        fill("x2", "o2", "1", price="110", side=Side.SELL, at=since + 20 * SECOND, fee="0.25"),
    )
    baseline = CashBaseline(cash=D(1000), at_ns=since, fills=ledger_fills)
    view = LedgerView(
        open_orders=(), positions={"AAPL": D(1)}, strategies_by_symbol=STRATEGIES, cash=baseline
    )
    positions = (BrokerPosition(symbol="AAPL", qty=D(1), avg_entry_price=D(100)),)
    account = BrokerAccount(cash=D("909.25"), equity=D(0), buying_power=D(0))
    assert diff(view, BrokerReport(positions=positions, account=account, as_of_ns=NOW)).cash_check == "ok"
    off = account.model_copy(update={"cash": D("919.25")})
    result = diff(view, BrokerReport(positions=positions, account=off, as_of_ns=NOW))
    assert kinds(result) == [("cash_mismatch", "cash", "account")]
    assert result.incidents[0].details["unexplained"] == "10.00"


def test_a_fill_at_the_cash_boundary_may_count_on_either_side() -> None:
    """A fill within the slack of the baseline time explains the move whether or not the baseline had it."""
    baseline = CashBaseline(
        cash=D(1000), at_ns=NOW - 60 * SECOND, fills=(fill("x1", "o1", "1", at=NOW - 60 * SECOND),)
    )
    view = LedgerView(
        open_orders=(), positions={"AAPL": D(1)}, strategies_by_symbol=STRATEGIES, cash=baseline
    )
    positions = (BrokerPosition(symbol="AAPL", qty=D(1), avg_entry_price=D(100)),)
    for cash in ("1000", "900"):
        account = BrokerAccount(cash=D(cash), equity=D(0), buying_power=D(0))
        assert diff(view, BrokerReport(positions=positions, account=account, as_of_ns=NOW)).cash_check == "ok"


# --- properties ------------------------------------------------------------------------------------


@dataclass
class World:
    """A broker truth and a ledger that lags it by some missed fills and events."""

    broker_orders: dict[str, BrokerOrderState] = field(default_factory=dict)
    broker_fills: list[Fill] = field(default_factory=list)
    ledger_orders: dict[str, Order] = field(default_factory=dict)
    ledger_fill_ids: set[str] = field(default_factory=set)

    def broker_positions(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for f in self.broker_fills:
            totals[f.symbol] = totals.get(f.symbol, D(0)) + f.signed_qty
        return totals

    def ledger_positions(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for f in self.broker_fills:
            if f.execution_id in self.ledger_fill_ids:
                totals[f.symbol] = totals.get(f.symbol, D(0)) + f.signed_qty
        return totals

    def view(self) -> LedgerView:
        reported = {f.client_order_id for f in self.broker_fills} | set(self.broker_orders)
        open_orders = tuple(o for o in self.ledger_orders.values() if o.status.is_open)
        known = {c: o for c, o in self.ledger_orders.items() if c in reported and not o.status.is_open}
        return LedgerView(
            open_orders=open_orders,
            known_orders=known,
            execution_ids=frozenset(self.ledger_fill_ids),
            positions=self.ledger_positions(),
            strategies_by_symbol=STRATEGIES,
        )

    def report(self, *, offset: int = 0) -> BrokerReport:
        view = self.view()
        missed = {f.client_order_id for f in self.broker_fills if f.execution_id not in self.ledger_fill_ids}
        asked = {o.client_order_id for o in view.open_orders} | (missed & set(view.known_orders))
        positions = self.broker_positions()
        if offset:
            positions["MSFT"] = positions.get("MSFT", D(0)) + offset
        return BrokerReport(
            open_orders=tuple(s for s in self.broker_orders.values() if s.status.is_open),
            order_states={c: self.broker_orders.get(c) for c in asked},
            fills=tuple(self.broker_fills),
            positions=tuple(
                BrokerPosition(symbol=s, qty=q, avg_entry_price=D(1)) for s, q in positions.items() if q != 0
            ),
            as_of_ns=NOW,
        )

    def repaired(self, result: ReconciliationResult) -> World:
        orders = dict(self.ledger_orders)
        for event in result.events_to_apply:
            orders[event.client_order_id] = apply(orders[event.client_order_id], event)
        ids = self.ledger_fill_ids | {f.execution_id for f in result.fills_to_append}
        return World(self.broker_orders, self.broker_fills, orders, ids)


PATH_END = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELED)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    world = World()
    for n in range(draw(st.integers(1, 6))):
        coid = f"o{n}"
        symbol = draw(st.sampled_from(("AAPL", "MSFT")))
        side = draw(st.sampled_from((Side.BUY, Side.SELL)))
        pieces = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
        qty = sum(pieces)
        end = draw(st.sampled_from(PATH_END))
        if end is OrderStatus.ACCEPTED:
            done = 0
        elif end is OrderStatus.FILLED:
            done = len(pieces)
        else:  # PARTIALLY_FILLED (at least one execution, not all) or CANCELED (any but all)
            done = draw(
                st.integers(min(int(end is OrderStatus.PARTIALLY_FILLED), len(pieces) - 1), len(pieces) - 1)
            )
        if end is OrderStatus.PARTIALLY_FILLED and done == 0:
            end = OrderStatus.ACCEPTED
        # The broker's path: ACCEPTED, then one PARTIALLY_FILLED/FILLED per execution, then maybe CANCELED.
        path: list[tuple[OrderStatus, int]] = [(OrderStatus.ACCEPTED, 0)]
        for i in range(done):
            cumulative = sum(pieces[: i + 1])
            path.append(
                (OrderStatus.FILLED if cumulative == qty else OrderStatus.PARTIALLY_FILLED, cumulative)
            )
        if end is OrderStatus.CANCELED:
            path.append((OrderStatus.CANCELED, sum(pieces[:done])))
        final_status, final_filled = path[-1]
        world.broker_orders[coid] = state(
            coid, final_status, filled=str(final_filled), qty=str(qty), symbol=symbol, side=side
        )
        for i in range(done):
            execution = fill(f"{coid}-x{i}", coid, str(pieces[i]), symbol=symbol, side=side)
            world.broker_fills.append(execution)
            if draw(st.booleans()):
                world.ledger_fill_ids.add(execution.execution_id)
        # The ledger is somewhere earlier on the path (RESERVED: before the acknowledgement).
        at = draw(st.integers(-1, len(path) - 1))
        base = ledger_order(coid, OrderStatus.RESERVED, qty=str(qty), symbol=symbol, side=side)
        if at >= 0:
            status, filled = path[at]
            base = base.model_copy(
                update={"status": status, "filled_qty": D(filled), "broker_order_id": f"b-{coid}"}
            )
        world.ledger_orders[coid] = base
    return world


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_repairs_bring_the_ledger_to_the_broker_truth_without_incidents(world: World) -> None:
    """Missed fills and later states are repaired exactly; after them the ledger equals the broker."""
    result = diff(world.view(), world.report())
    assert result.incidents == ()
    after = world.repaired(result)
    for coid, truth in world.broker_orders.items():
        order = after.ledger_orders[coid]
        assert (order.status, order.filled_qty) == (truth.status, truth.filled_qty)
    assert after.ledger_fill_ids == {f.execution_id for f in world.broker_fills}
    assert after.ledger_positions() == world.broker_positions()


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_diff_is_idempotent(world: World) -> None:
    """After its repairs are applied, a second diff has nothing to do."""
    after = world.repaired(diff(world.view(), world.report()))
    assert not diff(after.view(), after.report()).has_work


@settings(max_examples=100, deadline=None)
@given(worlds(), st.booleans(), st.integers(1, 5))
def test_an_injected_unknown_order_yields_exactly_its_incident(world: World, filled: bool, qty: int) -> None:
    """An order under a client id the ledger never reserved is one unknown_order and nothing else."""
    stranger = state(
        "zz",
        OrderStatus.FILLED if filled else OrderStatus.ACCEPTED,
        filled=str(qty if filled else 0),
        qty=str(qty),
    )
    world.broker_orders["zz"] = stranger
    if filled:
        world.broker_fills.append(fill("zz-x", "zz", str(qty)))
    result = diff(world.view(), world.report())
    assert kinds(result) == [("unknown_order", "b-zz", "account")]


@settings(max_examples=100, deadline=None)
@given(worlds(), st.integers(-5, 5).filter(bool))
def test_an_injected_position_offset_yields_exactly_its_incident(world: World, offset: int) -> None:
    """A broker position that no fill explains is one position_mismatch for that symbol's strategy."""
    result = diff(world.view(), world.report(offset=offset))
    assert kinds(result) == [("position_mismatch", "MSFT", "s-msft")]
    assert result.incidents[0].details["difference"] == str(offset)


# -- positions as of the same fills (fills landing while reconciliation reads) ---------------------------

fill_specs = st.lists(
    st.tuples(st.sampled_from(("AAPL", "MSFT")), st.sampled_from((Side.BUY, Side.SELL)), st.integers(1, 5)),
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(
    broker_specs=fill_specs,
    extra_specs=fill_specs,
    roles=st.lists(st.sampled_from(("before", "during", "lost")), min_size=8, max_size=8),
    offsets=st.tuples(st.integers(-3, 3), st.integers(-3, 3)),
    unsettled=st.sets(st.sampled_from(("AAPL", "MSFT"))),
)
def test_positions_are_compared_as_of_the_brokers_fills(
    broker_specs: list[tuple[str, Side, int]],
    extra_specs: list[tuple[str, Side, int]],
    roles: list[str],
    offsets: tuple[int, int],
    unsettled: set[str],
) -> None:
    """The ledger's fills the broker's report does not list (appended after its reads) are left out, the
    ones it lists count once, and only a broker position no fill explains is a position_mismatch."""
    broker_fills = [
        fill(f"x{i}", f"o{i}", str(q), symbol=s, side=d) for i, (s, d, q) in enumerate(broker_specs)
    ]
    extra = [fill(f"y{i}", f"p{i}", str(q), symbol=s, side=d) for i, (s, d, q) in enumerate(extra_specs)]
    orders = {
        f.client_order_id: ledger_order(
            f.client_order_id,
            OrderStatus.FILLED,
            filled=str(f.qty),
            qty=str(f.qty),
            symbol=f.symbol,
            side=f.side,
        )
        for f in (*broker_fills, *extra)
    }
    # Each broker fill reached the ledger before the cursor, after it (during the reads), or not at all.
    before = [f for f, role in zip(broker_fills, roles, strict=False) if role == "before"]
    during = [f for f, role in zip(broker_fills, roles, strict=False) if role == "during"]
    held = {"AAPL": D(7), "MSFT": D(-2)}  # what older fills, outside the window, made on both sides

    def totals(fills: list[Fill]) -> dict[str, Decimal]:
        out = dict(held)
        for f in fills:
            out[f.symbol] += f.signed_qty
        return out

    view = LedgerView(
        open_orders=(),
        known_orders=orders,
        execution_ids=frozenset(f.execution_id for f in (*before, *during)),
        positions=totals([*before, *during, *extra]),
        later_fills=(*during, *extra),
        strategies_by_symbol=STRATEGIES,
    )
    broker = totals(broker_fills)
    broker["AAPL"] += offsets[0]
    broker["MSFT"] += offsets[1]
    report = BrokerReport(
        fills=tuple(broker_fills),
        positions=tuple(
            BrokerPosition(symbol=s, qty=q, avg_entry_price=D(1)) for s, q in broker.items() if q
        ),
        unsettled_symbols=frozenset(unsettled),
        as_of_ns=NOW,
    )
    result = diff(view, report)
    mismatched = {
        i.subject: D(i.details["difference"]) for i in result.incidents if i.kind == "position_mismatch"
    }
    expected = {s: D(o) for s, o in zip(("AAPL", "MSFT"), offsets, strict=True) if o and s not in unsettled}
    assert mismatched == expected
    assert {f.execution_id for f in result.fills_to_append} == {
        f.execution_id for f in broker_fills if f not in before and f not in during
    }


def test_a_ledger_fill_from_before_the_cursor_that_the_broker_lacks_is_a_mismatch() -> None:
    """Only fills appended after the cursor are left out: a ledger fill from before it (in its positions,
    not in ``later_fills``) that the broker never reported is a position_mismatch."""
    view = LedgerView(
        open_orders=(),
        known_orders={"o1": ledger_order("o1", OrderStatus.FILLED, filled="4", qty="4")},
        execution_ids=frozenset(),
        positions={"AAPL": D(4)},
        strategies_by_symbol=STRATEGIES,
    )
    result = diff(view, BrokerReport(as_of_ns=NOW))
    assert kinds(result) == [("position_mismatch", "AAPL", "s-aapl")]
