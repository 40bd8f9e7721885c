"""A ledger with a long history, built fast with plain ``sqlite3`` in the ledger's own schema.

The schema comes from the ledger's migrations (``migrate_file``); rows go in with ``executemany``
inside one transaction. The history is what a busy account accumulates: orders round-robin over four
(strategy, symbol) keys, each key alternating buy and sell so every fill row carries the running
position the ledger would have written; one order in four fills in two executions. Every order has a
decision, its events (with ``status_after``) and a closure; an open-orders checkpoint follows the
closed history, and the still-open orders come after it, as the ledger would leave them.

Each order also has the account snapshot and the reconciliation run a busy account records beside
it (tables that grow for as long as the ledger lives, as the fills do).

The open orders are also live on a paper exchange state file next to the ledger (submitted there
first, so their broker order ids match), so the daemon's start-up reconciliation finds them.
Built files are cached under ``.bench/`` by size: reruns reuse them.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from autoquant.bench.common import BENCH_DIR, progress
from autoquant.clocks import SystemClock
from autoquant.domain.broker import OrderRequest
from autoquant.domain.values import OrderType, Side, TimeInForce
from autoquant.ledger.connection import migrate_file
from autoquant.runtime.config import PaperSettings

#: Bump when the shape of the built history changes, so stale caches are not reused.
VERSION = 3
KEYS = (("sma-aapl", "AAPL"), ("sma-msft", "MSFT"), ("mr-aapl", "AAPL"), ("mr-msft", "MSFT"))
_BUY, _SELL, _QTY = "100.00", "101.00", 10
_NS = 1_000_000_000
#: Orders collected before they are written (keeps the builder's memory flat).
CHUNK = 50_000


def cached_history(fills: int, open_orders: int) -> Path:
    """The directory holding ``ledger.db`` and ``paper.db`` for this size, built if missing."""
    target = BENCH_DIR / f"history-v{VERSION}-{fills}f-{open_orders}o"
    if (target / "done").exists():
        return target
    BENCH_DIR.mkdir(exist_ok=True)
    building = BENCH_DIR / f"{target.name}.building"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    started = time.perf_counter()
    build_history(building, fills, open_orders)
    (building / "done").write_text("ok\n")
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)
    took = time.perf_counter() - started
    progress(f"built a ledger of {fills} fills and {open_orders} open orders in {took:.1f}s")
    return target


def build_history(directory: Path, fills: int, open_orders: int, *, seconds_apart: int = 1) -> None:
    """Write ``ledger.db`` and ``paper.db`` of this size into ``directory`` (which must exist), one fill
    every ``seconds_apart`` seconds up to now."""
    broker_ids = _open_on_paper(directory / "paper.db", open_orders)
    _build_ledger(directory / "ledger.db", fills, broker_ids, seconds_apart)


def open_order_id(n: int) -> str:
    return f"aq-open-{n:06d}"


def _open_on_paper(path: Path, count: int) -> list[str]:
    """Submit the open orders to a paper exchange (limit buys far below the market, good till canceled)."""
    from autoquant.brokers.paper.engine import PaperExchange

    exchange = PaperExchange(PaperSettings(state_path=path, latency_s=0.0), SystemClock(), ["AAPL", "MSFT"])
    try:
        exchange.set_price("AAPL", Decimal("100"))
        exchange.set_price("MSFT", Decimal("100"))
        ids = []
        for n in range(count):
            state = exchange.submit(
                OrderRequest(
                    client_order_id=open_order_id(n),
                    symbol=KEYS[n % len(KEYS)][1],
                    side=Side.BUY,
                    qty=Decimal(1),
                    order_type=OrderType.LIMIT,
                    time_in_force=TimeInForce.GTC,
                    limit_price=Decimal("50"),
                )
            )
            ids.append(state.broker_order_id)
        return ids
    finally:
        exchange.close()


def _build_ledger(path: Path, fills: int, open_broker_ids: list[str], seconds_apart: int = 1) -> None:
    migrate_file(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        _insert_history(conn, fills, open_broker_ids, seconds_apart * _NS)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _insert_history(
    conn: sqlite3.Connection, fill_count: int, open_broker_ids: list[str], step_ns: int
) -> None:
    now = time.time_ns()
    start = now - fill_count * step_ns  # one fill a step, ending now
    decisions: list[tuple[object, ...]] = []
    accounts: list[tuple[object, ...]] = []
    orders: list[tuple[object, ...]] = []
    events: list[tuple[object, ...]] = []
    closures: list[tuple[object, ...]] = []
    fills: list[tuple[object, ...]] = []
    realized = [0] * len(KEYS)
    long = [False] * len(KEYS)
    made, n = 0, 0
    # Past ``fill_count``, only the keys still long trade once more (a sell), so every key ends flat.
    while made < fill_count or any(long):
        key = n % len(KEYS)
        if made >= fill_count and not long[key]:
            n += 1
            continue
        strategy_id, symbol = KEYS[key]
        side = "sell" if long[key] else "buy"
        price = _SELL if side == "sell" else _BUY
        ts = start + made * step_ns
        coid, did, boid = f"aq-h{n:09d}", f"d-h{n:09d}", f"b-h{n:09d}"
        decisions.append(
            (
                did,
                strategy_id,
                symbol,
                side,
                "bullish_cross" if side == "buy" else "bearish_cross",
                ts,
                '{"close": "100"}',
                None,
                ts,
            )
        )
        orders.append((coid, did, strategy_id, symbol, side, str(_QTY), "market", "day", None, ts))
        accounts.append(("100000", "100000", "100000", ts))
        events.append((coid, "accepted", "accepted", "0", boid, None, None, ts, ts))
        parts = [4, 6] if n % 4 == 3 and made + 2 <= fill_count else [_QTY]
        done = 0
        for i, qty in enumerate(parts):
            done += qty
            if side == "buy":
                position = done
                avg = _BUY
            else:
                position = _QTY - done
                realized[key] += qty  # (101 - 100) x qty
                avg = _BUY if position else "0"
            fills.append(
                (
                    f"x-h{n:09d}-{i}",
                    coid,
                    boid,
                    strategy_id,
                    symbol,
                    side,
                    str(qty),
                    price,
                    "0",
                    ts,
                    ts,
                    str(position),
                    avg,
                    str(realized[key]),
                    "0",
                )
            )
            status = "filled" if done == _QTY else "partially_filled"
            kind = "fill" if done == _QTY else "partial_fill"
            events.append((coid, kind, status, str(done), boid, None, None, ts, ts))
            made += 1
        closures.append((coid, "filled", ts))
        long[key] = side == "buy"
        n += 1
        if len(orders) >= CHUNK:
            _flush(conn, decisions, orders, events, closures, fills)
            _flush_accounts(conn, accounts)
    _flush(conn, decisions, orders, events, closures, fills)
    _flush_accounts(conn, accounts)
    conn.executemany("INSERT INTO position_keys (strategy_id, symbol) VALUES (?, ?)", [list(k) for k in KEYS])
    conn.execute(
        "INSERT INTO open_order_checkpoints (orders_seq, closures_seq, open_ids_json, local_ts_ns)"
        " VALUES ((SELECT max(seq) FROM orders), (SELECT max(seq) FROM order_closures), '[]', ?)",
        (now,),
    )
    _insert_open_orders(conn, open_broker_ids, now)
    conn.executemany(
        "INSERT INTO controls (kind, scope, reason, actor, local_ts_ns) VALUES (?, ?, ?, ?, ?)",
        [
            ("pause", "mr-msft", "bench: paused by operator", "operator", now - 3600 * _NS),
            ("resume", "mr-msft", "bench: resumed", "operator", now - 1800 * _NS),
        ],
    )
    conn.execute(
        "INSERT INTO account_snapshots (cash, equity, buying_power, local_ts_ns) VALUES (?, ?, ?, ?)",
        ("100000", "100000", "100000", now - 60 * _NS),
    )


def _flush(conn: sqlite3.Connection, *rows: list[tuple[object, ...]]) -> None:
    """Insert the collected rows (decisions, orders, events, closures, fills), then forget them."""
    decisions, orders, events, closures, fills = rows
    conn.executemany(
        "INSERT INTO decisions (decision_id, strategy_id, symbol, action, reason, data_time_ns, inputs_json,"
        " intent_json, local_ts_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        decisions,
    )
    conn.executemany(
        "INSERT INTO orders (client_order_id, decision_id, strategy_id, symbol, side, qty, order_type,"
        " time_in_force, limit_price, local_ts_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        orders,
    )
    _insert_events(conn, events)
    conn.executemany(
        "INSERT INTO order_closures (client_order_id, status, local_ts_ns) VALUES (?, ?, ?)", closures
    )
    conn.executemany(
        "INSERT INTO fills (execution_id, client_order_id, broker_order_id, strategy_id, symbol, side, qty,"
        " price, fee, broker_ts_ns, local_ts_ns, position_qty, position_avg_price, position_realized_pnl,"
        " position_fees) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        fills,
    )
    for collected in rows:
        collected.clear()


def _flush_accounts(conn: sqlite3.Connection, accounts: list[tuple[object, ...]]) -> None:
    """One account snapshot and one clean reconciliation run per collected order, then forget them."""
    conn.executemany(
        "INSERT INTO account_snapshots (cash, equity, buying_power, local_ts_ns) VALUES (?, ?, ?, ?)",
        accounts,
    )
    conn.executemany(
        "INSERT INTO reconciliations (trigger, clean, summary_json, started_ns, finished_ns)"
        " VALUES ('periodic', 1, '{}', ?, ?)",
        [(row[-1], row[-1]) for row in accounts],
    )
    accounts.clear()


def _insert_events(conn: sqlite3.Connection, events: Sequence[tuple[object, ...]]) -> None:
    conn.executemany(
        "INSERT INTO order_events (client_order_id, kind, status_after, filled_qty_after, broker_order_id,"
        " reason, order_reason_after, broker_ts_ns, local_ts_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        events,
    )


def _insert_open_orders(conn: sqlite3.Connection, broker_ids: list[str], now: int) -> None:
    orders, events = [], []
    for n, boid in enumerate(broker_ids):
        strategy_id, symbol = KEYS[n % len(KEYS)]
        ts = now - (len(broker_ids) - n) * _NS
        coid = open_order_id(n)
        orders.append((coid, None, strategy_id, symbol, "buy", "1", "limit", "gtc", "50", ts))
        events.append((coid, "accepted", "accepted", "0", boid, None, None, ts, ts))
    conn.executemany(
        "INSERT INTO orders (client_order_id, decision_id, strategy_id, symbol, side, qty, order_type,"
        " time_in_force, limit_price, local_ts_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        orders,
    )
    _insert_events(conn, events)


def history_summary(directory: Path) -> dict[str, int]:
    """Row counts of the built ledger (a sanity check the report can show)."""
    conn = sqlite3.connect(directory / "ledger.db")
    try:
        counts = {}
        for table in ("fills", "orders", "order_events", "decisions"):
            counts[table] = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        return counts
    finally:
        conn.close()
