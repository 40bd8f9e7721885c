"""Migration 0009: orders keep notional, trail and extended-hours terms; an 0008 ledger migrates forward."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.domain.orders import Order, OrderEvent, OrderEventKind, OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce
from autoquant.ledger import Ledger, migrations

D = Decimal


def _order(coid: str, **terms: object) -> Order:
    base: dict[str, object] = {
        "client_order_id": coid,
        "strategy_id": "s1",
        "symbol": "AAPL",
        "side": Side.BUY,
        "qty": D(10),
        "created_ns": 1,
        "updated_ns": 1,
    }
    return Order.model_validate(base | terms)


TERMS = [
    _order(
        "trail-price",
        order_type=OrderType.TRAILING_STOP,
        trail_price=D("1.25"),
        time_in_force=TimeInForce.GTC,
    ),
    _order("trail-pct", side=Side.SELL, order_type=OrderType.TRAILING_STOP, trail_percent=D("2.5")),
    _order("notional", qty=D(0), notional=D("250.75")),
    _order("late", order_type=OrderType.LIMIT, limit_price=D(99), extended_hours=True),
    _order("opening", time_in_force=TimeInForce.OPG),
    _order("closing", order_type=OrderType.LIMIT, limit_price=D(98), time_in_force=TimeInForce.CLS),
]


async def test_every_order_type_round_trips_through_the_ledger(tmp_ledger_path: Path) -> None:
    """Each new term is written and read back unchanged, by id and in the open orders."""
    async with await Ledger.open(tmp_ledger_path) as ledger:
        for order in TERMS:
            assert await ledger.reserve(order)
        for order in TERMS:
            assert await ledger.get_order(order.client_order_id) == order
        assert sorted(o.client_order_id for o in await ledger.open_orders()) == sorted(
            o.client_order_id for o in TERMS
        )


async def test_a_notional_order_fills_to_its_share_count(tmp_ledger_path: Path) -> None:
    """A notional order reserved with qty 0 reads back FILLED with the shares its fill reported."""
    async with await Ledger.open(tmp_ledger_path) as ledger:
        order = TERMS[2]
        await ledger.reserve(order)
        await ledger.apply_event(
            OrderEvent(
                client_order_id="notional", kind=OrderEventKind.FILL, filled_qty=D("2.5075"), local_ts_ns=2
            )
        )
        stored = await ledger.get_order("notional")
        assert stored is not None
        assert (stored.status, stored.filled_qty, stored.qty) == (OrderStatus.FILLED, D("2.5075"), D(0))


def test_an_0008_ledger_migrates_forward_and_keeps_its_orders(tmp_path: Path) -> None:
    """A ledger written up to 0008 takes 0009: its orders read as regular-hours qty orders, still
    append-only."""
    path = tmp_path / "old.db"
    known = migrations.discover()
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(conn, [m for m in known if m.version <= 8])
    conn.execute(
        "INSERT INTO orders (client_order_id, strategy_id, symbol, side, qty, order_type, time_in_force,"
        " limit_price, local_ts_ns, stop_price) VALUES ('old-1', 's1', 'AAPL', 'sell', '3', 'stop', 'gtc',"
        " NULL, 7, '95.5')"
    )
    assert [m.version for m in migrations.migrate(conn, [m for m in known if m.version <= 9])] == [9]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE orders SET notional = '1' WHERE client_order_id = 'old-1'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM orders WHERE client_order_id = 'old-1'")
    conn.close()


async def test_the_migrated_order_reads_back_with_its_old_terms(tmp_path: Path) -> None:
    """An order an 0008 ledger held reads, after 0009, with its stop; no notional, trail, extended hours."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(conn, [m for m in migrations.discover() if m.version <= 8])
    conn.execute(
        "INSERT INTO orders (client_order_id, strategy_id, symbol, side, qty, order_type, time_in_force,"
        " limit_price, local_ts_ns, stop_price) VALUES ('old-1', 's1', 'AAPL', 'sell', '3', 'stop', 'gtc',"
        " NULL, 7, '95.5')"
    )
    conn.close()
    async with await Ledger.open(path) as ledger:
        order = await ledger.get_order("old-1")
    assert order is not None
    assert (order.qty, order.order_type, order.stop_price, order.time_in_force) == (
        D(3),
        OrderType.STOP,
        D("95.5"),
        TimeInForce.GTC,
    )
    assert (order.notional, order.trail_price, order.trail_percent, order.extended_hours) == (
        None,
        None,
        None,
        False,
    )
