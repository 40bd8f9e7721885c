"""What the inspection commands show: rows built from the ledger, JSON-ready (Decimals as strings).

The inspection commands open the ledger read-only (``open_readonly``): looking must never change
what is looked at, whether a daemon is running or not, and whatever state the file is in. A ledger
that is missing, not SQLite, corrupt, written by a newer autoquant or not yet migrated is refused
with one line saying what to do.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

from autoquant.domain.orders import Order
from autoquant.domain.values import iso_utc, utc_day_start_ns
from autoquant.errors import LedgerError
from autoquant.ledger import LedgerReader, connection, migrations
from autoquant.operator.daemon_view import daemon_status

Row = dict[str, Any]

#: Where the unrealized P&L's price comes from: the latest bar the running daemon saw for the symbol
#: (from its status file), else (daemon stopped, or no bar yet) the latest fill in the ledger.
MARK_SOURCE = "last_fill"
BAR_MARK_SOURCE = "latest_bar"
Marks = dict[str, tuple[Decimal, str | None]]
_ZERO = Decimal(0)


def iso(ns: int | None) -> str | None:
    """UTC nanoseconds as ``2026-01-05T14:30:00.000000Z`` (always microseconds, as the logs write)."""
    return None if ns is None else iso_utc(ns)


def plain(value: Decimal) -> str:
    """A Decimal as a plain string (never exponent notation), trailing zeros kept as stored."""
    return format(value, "f")


# -- opening -------------------------------------------------------------------------------------


def _verify_readonly(path: Path) -> None:
    if not path.exists():
        raise LedgerError(
            f"no ledger at {path}: the daemon has not run yet, or [ledger] path points elsewhere "
            "(`autoquant migrate` creates an empty one)"
        )
    connection.check_file(path)
    try:
        conn = sqlite3.connect(
            connection.readonly_uri(path), uri=True, timeout=connection.BUSY_TIMEOUT_MS / 1000
        )
    except sqlite3.Error as error:
        raise connection.translate(error, path) from error
    try:
        pending = migrations.verify(conn, migrations.discover())
    except sqlite3.Error as error:
        raise connection.translate(error, path) from error
    finally:
        conn.close()
    if pending:
        names = ", ".join(m.name for m in pending)
        raise LedgerError(
            f"ledger {path} is not migrated ({names} pending): run `autoquant migrate` or start the daemon"
        )


async def open_readonly(path: Path) -> LedgerReader:
    """The ledger at ``path`` for reading only; never creates, migrates or writes it."""
    await asyncio.to_thread(_verify_readonly, path)
    return await LedgerReader.open(path)


# -- orders and fills ----------------------------------------------------------------------------


async def orders(
    ledger: LedgerReader,
    *,
    open_only: bool = False,
    symbol: str | None = None,
    since_ns: int | None = None,
) -> list[Row]:
    """Every order (created at or after ``since_ns``) with its current state and average fill price."""
    result = []
    for order, fills_of_order in await _orders_with_fills(ledger, open_only, symbol, since_ns):
        result.append(
            {
                "client_order_id": order.client_order_id,
                "broker_order_id": order.broker_order_id,
                "decision_id": order.decision_id,
                "strategy_id": order.strategy_id,
                "symbol": order.symbol,
                "side": order.side.value,
                "order_type": order.order_type.value,
                "limit_price": None if order.limit_price is None else plain(order.limit_price),
                "stop_price": None if order.stop_price is None else plain(order.stop_price),
                "notional": None if order.notional is None else plain(order.notional),
                "qty": order_qty(order),
                "filled_qty": plain(order.filled_qty),
                "avg_fill_price": average_price(fills_of_order),
                "status": order.status.value,
                "reason": order.reason,
                "created": iso(order.created_ns),
                "updated": iso(order.updated_ns),
            }
        )
    return result


def order_qty(order: Order) -> str | None:
    """An order's quantity; for a notional order (dollars, its ledger qty 0) none until it has ended,
    then the quantity it filled."""
    if order.notional is None:
        return plain(order.qty)
    return plain(order.filled_qty) if order.status.is_terminal and order.filled_qty > 0 else None


async def _orders_with_fills(
    ledger: LedgerReader, open_only: bool, symbol: str | None, since_ns: int | None
) -> list[tuple[Order, list[tuple[Decimal, Decimal]]]]:
    """Open orders come from the ledger's open-order read (its cost grows with the orders open, not with
    the ledger's history: a dashboard polling them must not scan every order ever placed)."""
    if not open_only:
        return await ledger.order_history(symbol=symbol, since_ns=since_ns)
    result = []
    for order in await ledger.open_orders():
        if (not symbol or order.symbol == symbol) and (since_ns is None or order.created_ns >= since_ns):
            fills = await ledger.fills_for_order(order.client_order_id)
            result.append((order, [(fill.qty, fill.price) for fill in fills]))
    return result


def average_price(pairs: list[tuple[Decimal, Decimal]]) -> str | None:
    """The quantity-weighted average of (qty, price) pairs, to 10 decimal places at most."""
    if not pairs:
        return None
    qty = notional = _ZERO
    for q, p in pairs:
        qty += q
        notional += q * p
    if not qty:
        return None
    with localcontext() as ctx:
        ctx.prec = 40
        average = (notional / qty).quantize(Decimal("1e-10"))
    text = plain(average)
    return text.rstrip("0").rstrip(".") if "." in text else text


async def fills(ledger: LedgerReader, *, symbol: str | None = None, since_ns: int | None = None) -> list[Row]:
    """Every execution (received at or after ``since_ns``), each counted once, in ledger order."""
    return [
        {
            "execution_id": f.fill.execution_id,
            "client_order_id": f.fill.client_order_id,
            "broker_order_id": f.fill.broker_order_id,
            "strategy_id": f.strategy_id,
            "symbol": f.fill.symbol,
            "side": f.fill.side.value,
            "qty": plain(f.fill.qty),
            "price": plain(f.fill.price),
            "fee": plain(f.fill.fee),
            "broker_time": iso(f.fill.broker_ts_ns),
            "local_time": iso(f.fill.local_ts_ns),
        }
        for f in await ledger.fill_history(symbol=symbol, since_ns=since_ns)
    ]


# -- positions and P&L ---------------------------------------------------------------------------


async def last_fill_prices(ledger: LedgerReader) -> dict[str, Decimal]:
    """The latest fill price per symbol: the last price the ledger knows, used to mark positions."""
    return await ledger.last_fill_prices()


def bar_marks(daemon: Row) -> Marks:
    """The running daemon's latest bar close per symbol (from ``daemon_status``), with the bar's time."""
    marks: Marks = {}
    for symbol, mark in (daemon.get("marks") or {}).items():
        try:
            marks[str(symbol)] = (Decimal(str(mark["price"])), mark.get("bar_time"))
        except (KeyError, TypeError, ArithmeticError, ValueError):
            continue
    return marks


async def positions(ledger: LedgerReader, bars: Marks | None = None) -> list[Row]:
    """Every (strategy, symbol) that ever traded, marked at the latest bar (``bars``, from the running
    daemon) or else at the symbol's last fill price."""
    fills = await last_fill_prices(ledger)
    result = []
    for (strategy_id, symbol), position in sorted((await ledger.positions()).items()):
        bar = (bars or {}).get(symbol)
        mark = bar[0] if bar is not None else fills.get(symbol)
        source = BAR_MARK_SOURCE if bar is not None else MARK_SOURCE
        result.append(
            {
                "strategy_id": strategy_id,
                "symbol": symbol,
                "qty": plain(position.qty),
                "avg_price": plain(position.avg_price),
                "realized_pnl": plain(position.realized_pnl),
                "unrealized_pnl": None if mark is None else plain(position.unrealized_pnl(mark)),
                "mark_price": None if mark is None else plain(mark),
                "mark_price_source": None if mark is None else source,
                "mark_time": bar[1] if bar is not None else None,
                "fees": plain(position.fees),
            }
        )
    return result


async def pnl_today(ledger: LedgerReader, now_ns: int, bars: Marks | None = None) -> Row:
    """Realized P&L and fees since UTC midnight (from the fills' running totals), unrealized at the mark.

    Per (strategy, symbol), today's realized P&L is the latest running total minus the running total
    of the last fill before midnight, so a history of any length costs two indexed lookups per key.
    """
    since = utc_day_start_ns(now_ns)
    realized = fees = _ZERO
    for marks in await ledger.realized_marks(since):
        realized += marks.latest_pnl - marks.before_pnl
        fees += marks.latest_fees - marks.before_fees
    unrealized = _ZERO
    sources = set()
    for row in await positions(ledger, bars):
        if row["unrealized_pnl"] is not None:
            unrealized += Decimal(row["unrealized_pnl"])
            sources.add(row["mark_price_source"])
    return {
        "since": iso(since),
        "realized": plain(realized),
        "fees": plain(fees),
        "unrealized": plain(unrealized),
        "mark_price_source": BAR_MARK_SOURCE if sources == {BAR_MARK_SOURCE} else MARK_SOURCE,
    }


async def account(ledger: LedgerReader) -> Row | None:
    """Cash, equity and buying power as the broker last reported them (the kill switch polls the
    account every few seconds, the paper exchange's or Alpaca's alike; reconciliation reads it too)."""
    latest = await ledger.latest_account()
    if latest is None:
        return None
    snapshot, at_ns = latest
    return {
        "cash": plain(snapshot.cash),
        "equity": plain(snapshot.equity),
        "buying_power": plain(snapshot.buying_power),
        "as_of": iso(at_ns),
        "source": "broker account",
    }


# -- incidents -----------------------------------------------------------------------------------


async def incidents(ledger: LedgerReader, *, open_only: bool = False) -> list[Row]:
    """What the daemon could not explain: what happened, what to do, and whether it is resolved."""
    return [
        {
            "incident_id": i.incident_id,
            "state": "resolved" if i.resolved else "open",
            "kind": i.kind,
            "subject": i.subject,
            "scope": i.scope,
            "message": i.message,
            "action": i.action,
            "opened": iso(i.local_ts_ns),
            "resolved": iso(i.resolved_ns),
            "resolved_by": i.resolved_by,
            "resolution_note": i.resolution_note,
            "details": i.details,
        }
        for i in await ledger.incidents(open_only=open_only)
    ]


# -- status --------------------------------------------------------------------------------------


async def status(ledger: LedgerReader, status_file: Path, now_ns: int | None = None) -> Row:
    """The account at a glance: daemon liveness, trading state, pauses, reconciliation, incidents, P&L."""
    now = time.time_ns() if now_ns is None else now_ns
    controls = await ledger.control_state()
    last = await ledger.last_reconciliation()
    daemon = daemon_status(status_file, now)
    bars = bar_marks(daemon)
    return {
        "daemon": daemon,
        "trading_state": controls.trading_state.value,
        "trading_state_reason": controls.state_reason or None,
        "trading_state_actor": controls.state_actor or None,
        "trading_state_since": iso(controls.state_since_ns) if controls.state_since_ns else None,
        "paused": [
            {"scope": f.scope, "reason": f.reason, "actor": f.actor, "since": iso(f.since_ns)}
            for f in sorted(controls.paused.values(), key=lambda flag: flag.scope)
        ],
        "last_reconciliation": None
        if last is None
        else {
            "trigger": last.trigger,
            "result": "clean" if last.clean else "mismatch",
            "started": iso(last.started_ns),
            "finished": iso(last.finished_ns),
            "summary": last.summary,
        },
        "open_incidents": [
            {key: row[key] for key in ("incident_id", "kind", "scope", "message", "action", "opened")}
            for row in await incidents(ledger, open_only=True)
        ],
        "open_orders": len(await ledger.open_orders()),
        "positions": await positions(ledger, bars),
        "account": await account(ledger),
        "pnl_today": await pnl_today(ledger, now, bars),
    }
