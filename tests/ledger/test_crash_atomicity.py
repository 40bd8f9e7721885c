"""A writer killed with SIGKILL between (or inside) appends leaves no partial transaction."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

WRITER = r"""
import asyncio, sys
from decimal import Decimal
from pathlib import Path
from autoquant.domain.fills import Fill
from autoquant.domain.orders import Order, OrderEvent, OrderEventKind
from autoquant.domain.values import Side
from autoquant.ledger import Ledger

async def main(path):
    ledger = await Ledger.open(Path(path))
    n = 0
    while True:
        coid = f"aq-{n}"
        await ledger.reserve(Order(client_order_id=coid, strategy_id="s1", symbol="AAPL", side=Side.BUY,
                                   qty=Decimal(2), created_ns=n))
        for k in (1, 2):
            kind = OrderEventKind.PARTIAL_FILL if k == 1 else OrderEventKind.FILL
            await ledger.apply_update(
                OrderEvent(client_order_id=coid, kind=kind, filled_qty=Decimal(k), local_ts_ns=n),
                Fill(execution_id=f"x{n}-{k}", client_order_id=coid, symbol="AAPL", side=Side.BUY,
                     qty=Decimal(1), price=Decimal("10.5"), local_ts_ns=n),
            )
        n += 1

asyncio.run(main(sys.argv[1]))
"""


def count_fills(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM fills").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_sigkill_mid_stream_leaves_consistent_ledger(tmp_path: Path) -> None:
    """After SIGKILL, each order's filled quantity equals its recorded fills and positions add up."""
    path = tmp_path / "ledger.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
    try:
        deadline = time.monotonic() + 30
        while count_fills(path) < 40:
            assert proc.poll() is None, "writer died on its own"
            assert time.monotonic() < deadline, "writer made no progress"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_order = conn.execute(
            "SELECT o.client_order_id,"
            " (SELECT filled_qty_after FROM order_events e WHERE e.client_order_id = o.client_order_id"
            "  ORDER BY seq DESC LIMIT 1),"
            " (SELECT count(*) FROM fills f WHERE f.client_order_id = o.client_order_id)"
            " FROM orders o"
        ).fetchall()
        for coid, filled, fills in per_order:
            assert Decimal(filled or "0") == fills, coid
        total = conn.execute("SELECT count(*) FROM fills").fetchone()[0]
        last = conn.execute("SELECT position_qty FROM fills ORDER BY seq DESC LIMIT 1").fetchone()[0]
        assert Decimal(last) == total
