"""The convergence check itself: it must see every kind of divergence, or the crash suite proves nothing."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

from autoquant.chaos.convergence import ExchangeView, LedgerOrder, LedgerSnapshot, compare, read_ledger
from autoquant.ledger.migrations import migrate


def exchange_order(coid: str, filled: str = "0") -> dict[str, Any]:
    return {"id": f"b-{coid}", "client_order_id": coid, "filled_qty": filled}


def converged_pair() -> tuple[LedgerSnapshot, ExchangeView]:
    ledger = LedgerSnapshot(
        orders={
            "c1": LedgerOrder("c1", "d1", "filled"),
            "c2": LedgerOrder("c2", "d2", "canceled"),  # withdrawn before it was sent
        },
        execution_ids=["e1"],
        fill_qty_by_order={"c1": Decimal("3")},
        positions={"AAPL": Decimal("3")},
    )
    exchange = ExchangeView(
        orders=[exchange_order("c1", "3")],
        fills=[{"id": "e1"}],
        positions={"AAPL": Decimal("3.0")},
    )
    return ledger, exchange


def test_equal_sides_converge() -> None:
    """A ledger that matches the exchange (equal decimals in other spellings included) is converged."""
    ledger, exchange = converged_pair()
    found = compare(ledger, exchange)
    assert found.converged, found.describe()
    assert found.counts() == {
        "exchange_orders": 1,
        "fills": 1,
        "orphans": 0,
        "duplicates": 0,
        "mismatches": 0,
        "unresolved": 0,
    }


def test_every_kind_of_divergence_is_reported() -> None:
    """Orphans, double orders per decision, fill and position differences, phantom and unresolved
    orders each show up under their own heading."""
    ledger, exchange = converged_pair()
    ledger.orders["c3"] = LedgerOrder("c3", "d1", "accepted")  # a second order for decision d1
    ledger.orders["c4"] = LedgerOrder("c4", "d4", "reserved")
    ledger.orders["c5"] = LedgerOrder("c5", "d5", "unknown")
    ledger.orders["c6"] = LedgerOrder("c6", "d6", "filled")  # the exchange never saw it
    ledger.execution_ids.append("e-ledger-only")
    exchange.orders.extend([exchange_order("c3"), exchange_order("stranger", "1")])
    exchange.fills.append({"id": "e-exchange-only"})
    exchange.positions["MSFT"] = Decimal(2)

    found = compare(ledger, exchange)

    assert found.orphans == ["stranger"]
    assert "decision d1 has 2 ledger orders" in found.duplicates
    assert "decision d1 has 2 exchange orders" in found.duplicates
    assert "fill e-exchange-only at the exchange is missing from the ledger" in found.mismatches
    assert "fill e-ledger-only in the ledger is unknown at the exchange" in found.mismatches
    assert "position MSFT: ledger 0, exchange 2" in found.mismatches
    assert "order c6 is filled in the ledger but unknown at the exchange" in found.mismatches
    assert found.unresolved == ["c4 is reserved", "c5 is unknown"]


def test_a_fill_counted_twice_and_a_short_booked_order_are_reported() -> None:
    """An execution id twice in the ledger is a duplicate; an order whose booked fills differ from
    the exchange's filled quantity is a mismatch."""
    ledger, exchange = converged_pair()
    ledger.execution_ids.append("e1")
    exchange.orders[0]["filled_qty"] = "5"
    found = compare(ledger, exchange)
    assert found.duplicates == ["execution e1 counted 2 times in the ledger"]
    assert found.mismatches == ["order c1: ledger fills 3, exchange filled_qty 5"]


def insert(conn: sqlite3.Connection, table: str, **row: object) -> None:
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))


def test_read_ledger_projects_status_fills_and_positions(tmp_path: Path) -> None:
    """From a real ledger file: an order with no event is RESERVED, the latest event is the status,
    and a symbol's position is the sum of each strategy's latest position_qty."""
    path = tmp_path / "ledger.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrate(conn)
        common = {"order_type": "market", "time_in_force": "day", "local_ts_ns": 1}
        for coid, strategy in (("c1", "s1"), ("c2", "s2"), ("c3", "s1")):
            insert(
                conn,
                "orders",
                client_order_id=coid,
                decision_id=None,
                strategy_id=strategy,
                symbol="AAPL",
                side="buy",
                qty="1",
                **common,
            )
        for status in ("accepted", "filled"):
            insert(
                conn,
                "order_events",
                client_order_id="c1",
                kind=status,
                status_after=status,
                filled_qty_after="1",
                local_ts_ns=1,
            )
        fill = {"symbol": "AAPL", "side": "buy", "price": "10", "fee": "0", "local_ts_ns": 1}
        costs = {"position_avg_price": "10", "position_realized_pnl": "0", "position_fees": "0"}
        for execution, coid, strategy, qty, after in (
            ("e1", "c1", "s1", "1", "1"),
            ("e2", "c2", "s2", "2", "2"),
            ("e3", "c3", "s1", "0.5", "1.5"),
        ):
            insert(
                conn,
                "fills",
                execution_id=execution,
                client_order_id=coid,
                strategy_id=strategy,
                qty=qty,
                position_qty=after,
                **fill,
                **costs,
            )
    finally:
        conn.close()

    snapshot = read_ledger(path)

    assert {coid: o.status for coid, o in snapshot.orders.items()} == {
        "c1": "filled",
        "c2": "reserved",
        "c3": "reserved",
    }
    assert snapshot.execution_ids == ["e1", "e2", "e3"]
    assert snapshot.fill_qty_by_order == {"c1": Decimal(1), "c2": Decimal(2), "c3": Decimal("0.5")}
    assert snapshot.positions == {"AAPL": Decimal("3.5")}


def test_a_replacement_rides_its_original_decision_but_a_double_replace_is_a_duplicate() -> None:
    """An original and its replacement on one decision converge; two replacements of one order at the
    exchange are reported as a duplicate."""
    ledger, exchange = converged_pair()
    ledger.orders["c7"] = LedgerOrder("c7", "d7", "replaced")
    ledger.orders["c8"] = LedgerOrder("c8", "d7", "accepted", replaces="c7")
    exchange.orders.extend([exchange_order("c7"), exchange_order("c8")])
    assert compare(ledger, exchange).converged, compare(ledger, exchange).describe()
    ledger.orders["c9"] = LedgerOrder("c9", "d7", "accepted", replaces="c7")
    exchange.orders.append(exchange_order("c9"))
    assert compare(ledger, exchange).duplicates == ["order c7 replaced 2 times at the exchange"]
