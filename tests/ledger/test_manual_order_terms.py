"""Migration 0010: manual order requests keep every term a strategy's order has (stop price, notional,
trail, extended hours); a request recorded before it reads back as a regular-hours qty order."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.ledger import Ledger, migrations
from autoquant.ledger.surface import ManualOrder


async def test_a_request_round_trips_with_every_term(tmp_path: Path) -> None:
    """A trailing stop and a notional request read back from the ledger exactly as recorded."""
    requests = [
        ManualOrder(
            "t-1", "operator", "AAPL", "sell", Decimal(2), "trailing_stop", "gtc", None, "why", "me", 1,
            trail_percent=Decimal("1.5"),
        ),
        ManualOrder(
            "n-1", "operator", "AAPL", "buy", Decimal(0), "market", "day", None, "why", "me", 2,
            notional=Decimal("250"),
        ),
        ManualOrder(
            "s-1", "operator", "AAPL", "buy", Decimal(1), "stop_limit", "day", Decimal(96), "why", "me", 3,
            stop_price=Decimal(95), extended_hours=False,
        ),
    ]  # fmt: skip
    async with await Ledger.open(tmp_path / "l.db") as ledger:
        for request in requests:
            assert (await ledger.request_manual_order(request))[0]
        assert await ledger.pending_manual_orders() == requests


def test_an_0009_ledger_takes_0010_and_keeps_its_requests(tmp_path: Path) -> None:
    """A request written before 0010 reads as a qty order with no stop, trail or notional; still
    append-only."""
    path = tmp_path / "old.db"
    known = migrations.discover()
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(conn, [m for m in known if m.version <= 9])
    conn.execute(
        "INSERT INTO manual_orders (client_order_id, strategy_id, symbol, side, qty, order_type,"
        " time_in_force, limit_price, reason, actor, local_ts_ns) VALUES ('old-1', 'operator', 'AAPL',"
        " 'buy', '3', 'limit', 'gtc', '90', 'r', 'a', 7)"
    )
    assert 10 in [m.version for m in migrations.migrate(conn, known)]
    row = conn.execute(
        "SELECT stop_price, notional, trail_price, trail_percent, extended_hours FROM manual_orders"
    ).fetchall()
    assert row == [(None, None, None, None, 0)]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE manual_orders SET notional = '1' WHERE client_order_id = 'old-1'")
    conn.close()
