"""The paper exchange's own SQLite file: orders, fills, positions, cash, last prices and the event log.

The exchange keeps its working set (open orders, positions, cash, prices) in memory and writes every
change through here inside one ``BEGIN IMMEDIATE`` transaction, so a crash leaves either all of an
event (the order's new state, its fill, the position, the cash, the update in the event log) or none.
Closed orders and fills are read back from the file on demand, so memory grows with open orders only.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

from autoquant.domain.broker import BrokerOrderState, OrderUpdate
from autoquant.domain.fills import Fill
from autoquant.domain.positions import Position

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    broker_order_id TEXT NOT NULL UNIQUE,
    client_order_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    is_open INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    due_ns INTEGER NOT NULL,
    expires_ns INTEGER,
    fills_done INTEGER NOT NULL,
    filled_notional TEXT NOT NULL,
    state TEXT NOT NULL,
    triggered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS orders_open ON orders (is_open);
CREATE INDEX IF NOT EXISTS orders_created ON orders (created_ns);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL UNIQUE,
    broker_order_id TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    fill TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_ts ON fills (ts_ns);
CREATE TABLE IF NOT EXISTS positions (symbol TEXT PRIMARY KEY, position TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS prices (symbol TEXT PRIMARY KEY, price TEXT NOT NULL, ts_ns INTEGER NOT NULL);
-- A replace: the old order, the order that replaced it, when (GET /v2/orders shows both ends).
CREATE TABLE IF NOT EXISTS replacements (
    old_id TEXT PRIMARY KEY,
    new_id TEXT NOT NULL UNIQUE,
    ts_ns INTEGER NOT NULL
);
-- The account's equity, the last value in each minute: GET /v2/account/portfolio/history.
CREATE TABLE IF NOT EXISTS equity (minute INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, equity TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    broker_order_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    update_json TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class OrderRecord:
    """An order plus what only the venue needs to work it."""

    state: BrokerOrderState
    #: Not before this time may the order (or its remainder) fill: acceptance plus latency.
    due_ns: int
    #: Day orders expire at this time (the next UTC midnight); None for the other times in force.
    expires_ns: int | None
    fills_done: int = 0
    #: Sum of qty * price over the fills, for the exact cumulative average price.
    filled_notional: Decimal = Decimal(0)
    #: A stop, stop-limit or trailing stop whose stop has traded: it now works as a market or limit order.
    triggered: bool = False

    def with_trigger(self) -> OrderRecord:
        return dataclasses.replace(self, triggered=True)

    def with_state(self, state: BrokerOrderState) -> OrderRecord:
        return dataclasses.replace(self, state=state)

    def with_expiry(self, expires_ns: int) -> OrderRecord:
        return dataclasses.replace(self, expires_ns=expires_ns)


@dataclass(frozen=True)
class OrderLinks:
    """An order's part in replaces: the order it replaced, the one that replaced it, and when."""

    replaces: str | None = None
    replaced_by: str | None = None
    replaced_at_ns: int | None = None


class Writer:
    """The writes of one transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._sqlite = conn

    def put_order(self, record: OrderRecord) -> None:
        state = record.state
        self._sqlite.execute(
            "INSERT INTO orders (broker_order_id, client_order_id, symbol, is_open, created_ns, due_ns,"
            " expires_ns, fills_done, filled_notional, state, triggered)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (broker_order_id) DO UPDATE SET is_open = excluded.is_open,"
            " due_ns = excluded.due_ns, expires_ns = excluded.expires_ns,"
            " fills_done = excluded.fills_done, filled_notional = excluded.filled_notional,"
            " state = excluded.state, triggered = excluded.triggered",
            (
                state.broker_order_id,
                state.client_order_id,
                state.symbol,
                int(state.status.is_open),
                state.created_ns,
                record.due_ns,
                record.expires_ns,
                record.fills_done,
                str(record.filled_notional),
                state.model_dump_json(),
                int(record.triggered),
            ),
        )

    def add_fill(self, fill: Fill) -> None:
        self._sqlite.execute(
            "INSERT INTO fills (execution_id, broker_order_id, ts_ns, fill) VALUES (?, ?, ?, ?)",
            (fill.execution_id, fill.broker_order_id or "", fill.local_ts_ns, fill.model_dump_json()),
        )

    def put_position(self, position: Position) -> None:
        self._sqlite.execute(
            "INSERT OR REPLACE INTO positions (symbol, position) VALUES (?, ?)",
            (position.symbol, position.model_dump_json()),
        )

    def set_cash(self, cash: Decimal) -> None:
        self._sqlite.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('cash', ?)", (str(cash),))

    def set_price(self, symbol: str, price: Decimal, ts_ns: int) -> None:
        self._sqlite.execute(
            "INSERT OR REPLACE INTO prices (symbol, price, ts_ns) VALUES (?, ?, ?)",
            (symbol, str(price), ts_ns),
        )

    def add_replacement(self, old_id: str, new_id: str, ts_ns: int) -> None:
        self._sqlite.execute(
            "INSERT INTO replacements (old_id, new_id, ts_ns) VALUES (?, ?, ?)", (old_id, new_id, ts_ns)
        )

    def set_meta(self, key: str, value: str) -> None:
        self._sqlite.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def add_event(self, update: OrderUpdate) -> None:
        self._sqlite.execute(
            "INSERT INTO events (broker_order_id, kind, ts_ns, update_json) VALUES (?, ?, ?, ?)",
            (update.order.broker_order_id, update.kind.value, update.local_ts_ns, update.model_dump_json()),
        )


class PaperStore:
    """One SQLite file (WAL) holding the paper exchange's state.

    ``durable=False`` (a backtest's venue, a scratch file rebuilt by rerunning, as its ledger is) sets
    ``synchronous=OFF``: the same transactions and rows, only no sync to disk at the WAL's checkpoints.
    """

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The exchange is single-threaded, but may be built on one thread and served from another
        # (a server's loop thread), hence check_same_thread=False.
        self._sqlite = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._sqlite.execute("PRAGMA journal_mode=WAL")
        self._sqlite.execute(f"PRAGMA synchronous={'NORMAL' if durable else 'OFF'}")
        self._sqlite.executescript(_SCHEMA)
        columns = {row[1] for row in self._sqlite.execute("PRAGMA table_info(orders)")}
        if "triggered" not in columns:  # a file written before stop orders existed
            self._sqlite.execute("ALTER TABLE orders ADD COLUMN triggered INTEGER NOT NULL DEFAULT 0")
        with self.transaction() as _:
            self._sqlite.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def close(self) -> None:
        self._sqlite.close()

    @contextmanager
    def transaction(self) -> Iterator[Writer]:
        self._sqlite.execute("BEGIN IMMEDIATE")
        try:
            yield Writer(self._sqlite)
        except BaseException:
            self._sqlite.execute("ROLLBACK")
            raise
        self._sqlite.execute("COMMIT")

    # --- reads ---------------------------------------------------------------------------------

    def cash(self) -> Decimal | None:
        row = self._sqlite.execute("SELECT value FROM meta WHERE key = 'cash'").fetchone()
        return None if row is None else Decimal(row[0])

    def meta(self, key: str) -> str | None:
        row = self._sqlite.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def links(self, order_ids: Sequence[str]) -> dict[str, OrderLinks]:
        """How each of ``order_ids`` takes part in a replace (absent: in none)."""
        found: dict[str, OrderLinks] = {}
        marks = ", ".join("?" for _ in order_ids)
        if not order_ids:
            return found
        rows = self._sqlite.execute(
            "SELECT old_id, new_id, ts_ns FROM replacements"
            f" WHERE old_id IN ({marks}) OR new_id IN ({marks})",
            [*order_ids, *order_ids],
        ).fetchall()
        for old_id, new_id, ts_ns in rows:
            old = found.get(old_id, OrderLinks())
            found[old_id] = OrderLinks(old.replaces, replaced_by=new_id, replaced_at_ns=ts_ns)
            new = found.get(new_id, OrderLinks())
            found[new_id] = OrderLinks(old_id, new.replaced_by, new.replaced_at_ns)
        return found

    def record_equity(self, ts_ns: int, equity: Decimal) -> None:
        """The equity at ``ts_ns``; the last one written in a minute stands for that minute."""
        self._sqlite.execute(
            "INSERT OR REPLACE INTO equity (minute, ts_ns, equity) VALUES (?, ?, ?)",
            (ts_ns // 60_000_000_000, ts_ns, str(equity)),
        )

    def equity_points(self, *, until_ns: int) -> list[tuple[int, Decimal]]:
        """(time, equity) at or before ``until_ns``, oldest first, one per minute."""
        rows = self._sqlite.execute(
            "SELECT ts_ns, equity FROM equity WHERE ts_ns <= ? ORDER BY minute", (until_ns,)
        ).fetchall()
        return [(ts, Decimal(value)) for ts, value in rows]

    def open_orders(self) -> list[OrderRecord]:
        rows = self._sqlite.execute(
            "SELECT state, due_ns, expires_ns, fills_done, filled_notional, triggered FROM orders"
            " WHERE is_open = 1 ORDER BY seq"
        ).fetchall()
        return [
            OrderRecord(
                BrokerOrderState.model_validate_json(state),
                due,
                expires,
                done,
                Decimal(notional),
                bool(fired),
            )
            for state, due, expires, done, notional, fired in rows
        ]

    def positions(self) -> dict[str, Position]:
        rows = self._sqlite.execute("SELECT symbol, position FROM positions").fetchall()
        return {symbol: Position.model_validate_json(text) for symbol, text in rows}

    def prices(self) -> dict[str, Decimal]:
        rows = self._sqlite.execute("SELECT symbol, price FROM prices").fetchall()
        return {symbol: Decimal(price) for symbol, price in rows}

    def order(
        self, *, broker_order_id: str | None = None, client_order_id: str | None = None
    ) -> BrokerOrderState | None:
        if broker_order_id is not None:
            row = self._sqlite.execute(
                "SELECT state FROM orders WHERE broker_order_id = ?", (broker_order_id,)
            ).fetchone()
        else:
            row = self._sqlite.execute(
                "SELECT state FROM orders WHERE client_order_id = ?", (client_order_id,)
            ).fetchone()
        return None if row is None else BrokerOrderState.model_validate_json(row[0])

    def orders(
        self,
        *,
        status: Literal["open", "closed", "all"],
        after_ns: int | None,
        until_ns: int | None,
        limit: int | None,
        symbols: Sequence[str] | None,
        direction: Literal["asc", "desc"],
    ) -> list[BrokerOrderState]:
        where: list[str] = []
        params: list[object] = []
        if status != "all":
            where.append("is_open = ?")
            params.append(1 if status == "open" else 0)
        if after_ns is not None:
            where.append("created_ns > ?")
            params.append(after_ns)
        if until_ns is not None:
            where.append("created_ns < ?")  # Alpaca's ``until`` is exclusive
            params.append(until_ns)
        if symbols is not None:
            where.append(f"symbol IN ({', '.join('?' for _ in symbols)})")
            params.extend(symbols)
        order = "ASC" if direction == "asc" else "DESC"
        sql = "SELECT state FROM orders"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY created_ns {order}, seq {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._sqlite.execute(sql, params).fetchall()
        return [BrokerOrderState.model_validate_json(row[0]) for row in rows]

    def fills(self, *, after_ns: int | None) -> list[Fill]:
        rows = self._sqlite.execute(
            "SELECT fill FROM fills WHERE ts_ns > ? ORDER BY seq",
            (-(2**62) if after_ns is None else after_ns,),
        ).fetchall()
        return [Fill.model_validate_json(row[0]) for row in rows]

    def events(self, *, after_seq: int, limit: int | None) -> list[tuple[int, OrderUpdate]]:
        sql = "SELECT seq, update_json FROM events WHERE seq > ? ORDER BY seq"
        params: list[object] = [after_seq]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._sqlite.execute(sql, params).fetchall()
        return [(seq, OrderUpdate.model_validate_json(text)) for seq, text in rows]
