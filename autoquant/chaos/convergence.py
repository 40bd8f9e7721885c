"""Has the ledger converged to the exchange? The invariants every crash test and ``make chaos`` check.

One function, ``check_convergence``, compares a ledger file (read-only) with what a paper-server (or
any Alpaca-shaped API) reports over REST, so the crash suite and the chaos driver cannot drift apart:

- **orphans**: an order at the exchange whose client order id the ledger never reserved;
- **duplicates**: a decision with more than one original order (in the ledger, or at the exchange; a
  replacement rides its original's decision and is not counted), an order replaced more than once at
  the exchange, and an execution id the ledger counts more than once;
- **mismatches**: execution ids on one side only; per-symbol positions that differ (the ledger's is the
  latest ``position_qty`` of each (strategy, symbol), summed per symbol); an order whose filled quantity
  differs; a ledger order that says the exchange has it (accepted, filled, ...) when it does not;
- **unresolved**: a ledger order whose latest state is RESERVED or UNKNOWN (no event yet = RESERVED).

The exchange is read with retries, because ``make chaos`` may leave faults switched on.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from autoquant.brokers.alpaca_mapping import format_time_ns, parse_time_ns
from autoquant.ledger.connection import readonly_uri
from autoquant.runtime.config import Secrets

#: Ledger states that say the exchange took the order; such an order must exist there.
AT_EXCHANGE = frozenset({"accepted", "partially_filled", "filled", "pending_cancel", "expired", "replaced"})
UNRESOLVED = frozenset({"reserved", "unknown"})
ORDERS_PAGE = 500
FILLS_PAGE = 100


@dataclass(frozen=True)
class Convergence:
    """What ``check_convergence`` found; empty lists mean converged."""

    exchange_orders: int
    fills: int
    orphans: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return not (self.orphans or self.duplicates or self.mismatches or self.unresolved)

    def counts(self) -> dict[str, int]:
        return {
            "exchange_orders": self.exchange_orders,
            "fills": self.fills,
            "orphans": len(self.orphans),
            "duplicates": len(self.duplicates),
            "mismatches": len(self.mismatches),
            "unresolved": len(self.unresolved),
        }

    def describe(self) -> str:
        """Every finding, one per line (for assertion messages and the chaos report)."""
        lines = [f"orphan: {item}" for item in self.orphans]
        lines += [f"duplicate: {item}" for item in self.duplicates]
        lines += [f"mismatch: {item}" for item in self.mismatches]
        lines += [f"unresolved: {item}" for item in self.unresolved]
        return "\n".join(lines) or "converged"


@dataclass(frozen=True)
class ExchangeView:
    orders: list[dict[str, Any]]
    fills: list[dict[str, Any]]
    positions: dict[str, Decimal]


@dataclass(frozen=True)
class LedgerOrder:
    client_order_id: str
    decision_id: str | None
    status: str
    #: The client order id of the order this one replaces, if it is a replacement.
    replaces: str | None = None


@dataclass(frozen=True)
class LedgerSnapshot:
    orders: dict[str, LedgerOrder]
    execution_ids: list[str]
    fill_qty_by_order: dict[str, Decimal]
    positions: dict[str, Decimal]


class ExchangeReader:
    """GETs against the Alpaca-shaped REST API, retried through injected 429/5xx and dropped sockets."""

    def __init__(self, url: str, keys: Secrets, *, attempts: int = 20, timeout_s: float = 5.0) -> None:
        self._client = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"APCA-API-KEY-ID": keys.key_id, "APCA-API-SECRET-KEY": keys.secret_key},
            timeout=timeout_s,
        )
        self._attempts = attempts

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, params: dict[str, str]) -> Any:
        return self._request("GET", path, params)

    def _request(self, method: str, path: str, params: dict[str, str]) -> Any:
        last = ""
        for attempt in range(self._attempts):
            try:
                response = self._client.request(method, path, params=params)
            except httpx.TransportError as error:
                last = repr(error)
            else:
                if response.status_code in (200, 207):
                    return response.json()
                if response.status_code != 429 and response.status_code < 500:
                    response.raise_for_status()
                last = f"HTTP {response.status_code}"
            time.sleep(min(0.5, 0.02 * 2**attempt))  # backoff between retries, not a wait-for
        raise RuntimeError(f"{method} {path} failed {self._attempts} times; last: {last}")

    def cancel_open_orders(self, deadline_s: float = 30.0) -> int:
        """Cancel every open order (``DELETE /v2/orders``) until none is open; return how many rounds it
        took. Once the daemon has stopped, resting limit and stop orders still fill as the exchange's
        prices move, so a check must first freeze the exchange, then reconcile, then compare."""
        deadline = time.monotonic() + deadline_s
        rounds = 0
        while self.get("/v2/orders", {"status": "open", "limit": "500"}):
            if time.monotonic() > deadline:
                raise RuntimeError(f"orders still open at the exchange after {deadline_s:.0f} s of cancels")
            self._request("DELETE", "/v2/orders", {})
            rounds += 1
        return rounds

    def read(self) -> ExchangeView:
        return ExchangeView(self._orders(), self._fills(), self._positions())

    def _orders(self) -> list[dict[str, Any]]:
        """Every order, oldest first, paged by creation time (``after`` is exclusive, so step back 1 ns
        and drop the ids already seen: two orders created in the same nanosecond are not lost)."""
        seen: dict[str, dict[str, Any]] = {}
        after: str | None = None
        while True:
            params = {"status": "all", "limit": str(ORDERS_PAGE), "direction": "asc"}
            if after is not None:
                params["after"] = after
            page: list[dict[str, Any]] = self.get("/v2/orders", params)
            new = [order for order in page if order["id"] not in seen]
            for order in new:
                seen[order["id"]] = order
            if not new or len(page) < ORDERS_PAGE:
                return list(seen.values())
            after = format_time_ns(parse_time_ns(page[-1]["created_at"]) - 1)

    def _fills(self) -> list[dict[str, Any]]:
        fills: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params = {"direction": "asc", "page_size": str(FILLS_PAGE)}
            if token is not None:
                params["page_token"] = token
            page: list[dict[str, Any]] = self.get("/v2/account/activities/FILL", params)
            fills.extend(page)
            if len(page) < FILLS_PAGE:
                return fills
            token = page[-1]["id"]

    def _positions(self) -> dict[str, Decimal]:
        rows: list[dict[str, Any]] = self.get("/v2/positions", {})
        return {row["symbol"]: Decimal(row["qty"]) for row in rows}


def read_ledger(path: Path) -> LedgerSnapshot:
    """The ledger's side, read-only (safe while a daemon runs; the checks want it stopped)."""
    with sqlite3.connect(readonly_uri(path), uri=True, timeout=10) as conn:
        rows = conn.execute(
            "SELECT o.client_order_id, o.decision_id,"
            " (SELECT e.status_after FROM order_events e WHERE e.client_order_id = o.client_order_id"
            "  ORDER BY e.seq DESC LIMIT 1), o.replaces"
            " FROM orders o ORDER BY o.seq"
        ).fetchall()
        orders = {
            coid: LedgerOrder(coid, decision, status or "reserved", replaces)
            for coid, decision, status, replaces in rows
        }
        execution_ids = [row[0] for row in conn.execute("SELECT execution_id FROM fills ORDER BY seq")]
        fill_qty: dict[str, Decimal] = defaultdict(Decimal)
        for coid, qty in conn.execute("SELECT client_order_id, qty FROM fills"):
            fill_qty[coid] += Decimal(qty)
        positions: dict[str, Decimal] = defaultdict(Decimal)
        latest = conn.execute(
            "SELECT f.symbol, f.position_qty FROM fills f WHERE f.seq = (SELECT max(g.seq) FROM fills g"
            " WHERE g.strategy_id = f.strategy_id AND g.symbol = f.symbol)"
        )
        for symbol, qty in latest:
            positions[symbol] += Decimal(qty)
    return LedgerSnapshot(orders, execution_ids, dict(fill_qty), dict(positions))


def compare(ledger: LedgerSnapshot, exchange: ExchangeView) -> Convergence:
    """The pure comparison of the two sides (see the module docstring for each finding)."""
    at_exchange = {order["client_order_id"]: order for order in exchange.orders}
    orphans = sorted(coid for coid in at_exchange if coid not in ledger.orders)

    duplicates = []
    originals = [o for o in ledger.orders.values() if o.replaces is None]
    per_decision = Counter(o.decision_id for o in originals if o.decision_id is not None)
    duplicates += [f"decision {d} has {n} ledger orders" for d, n in sorted(per_decision.items()) if n > 1]
    sent = Counter(
        ledger.orders[coid].decision_id
        for coid in at_exchange
        if coid in ledger.orders
        and ledger.orders[coid].decision_id is not None
        and ledger.orders[coid].replaces is None
    )
    duplicates += [f"decision {d} has {n} exchange orders" for d, n in sorted(sent.items()) if n > 1]
    replaced = Counter(
        ledger.orders[coid].replaces
        for coid in at_exchange
        if coid in ledger.orders and ledger.orders[coid].replaces is not None
    )
    duplicates += [
        f"order {c} replaced {n} times at the exchange" for c, n in sorted(replaced.items()) if n > 1
    ]
    duplicates += [
        f"execution {e} counted {n} times in the ledger"
        for e, n in sorted(Counter(ledger.execution_ids).items())
        if n > 1
    ]

    mismatches = []
    ours, theirs = set(ledger.execution_ids), {fill["id"] for fill in exchange.fills}
    mismatches += [f"fill {e} at the exchange is missing from the ledger" for e in sorted(theirs - ours)]
    mismatches += [f"fill {e} in the ledger is unknown at the exchange" for e in sorted(ours - theirs)]
    for symbol in sorted(set(ledger.positions) | set(exchange.positions)):
        mine, real = ledger.positions.get(symbol, Decimal(0)), exchange.positions.get(symbol, Decimal(0))
        if mine != real:
            mismatches.append(f"position {symbol}: ledger {mine}, exchange {real}")
    for coid, order in sorted(at_exchange.items()):
        booked = ledger.fill_qty_by_order.get(coid, Decimal(0))
        if coid in ledger.orders and booked != Decimal(order["filled_qty"]):
            mismatches.append(
                f"order {coid}: ledger fills {booked}, exchange filled_qty {order['filled_qty']}"
            )
    for coid, mine_order in sorted(ledger.orders.items()):
        if mine_order.status in AT_EXCHANGE and coid not in at_exchange:
            mismatches.append(
                f"order {coid} is {mine_order.status} in the ledger but unknown at the exchange"
            )

    unresolved = [
        f"{coid} is {order.status}"
        for coid, order in sorted(ledger.orders.items())
        if order.status in UNRESOLVED
    ]
    return Convergence(
        exchange_orders=len(at_exchange),
        fills=len(theirs),
        orphans=orphans,
        duplicates=duplicates,
        mismatches=mismatches,
        unresolved=unresolved,
    )


def freeze_exchange(server_url: str, keys: Secrets) -> None:
    """Cancel every open order at the exchange, so nothing fills between a reconcile and the check."""
    reader = ExchangeReader(server_url, keys)
    try:
        reader.cancel_open_orders()
    finally:
        reader.close()


def check_convergence(ledger_path: Path, server_url: str, keys: Secrets) -> Convergence:
    """Read both sides and compare them. Run it with no daemon trading on this ledger."""
    reader = ExchangeReader(server_url, keys)
    try:
        exchange = reader.read()
    finally:
        reader.close()
    return compare(read_ledger(ledger_path), exchange)
