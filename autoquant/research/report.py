"""The backtest's report, read from its ledger: trades (FIFO round trips), equity, drawdown, Sharpe.

Everything that is money is ``Decimal`` and printed as a string. Trades are closed round trips per
(strategy, symbol), matched first in, first out; ``pnl`` is after the fees of both legs (``fees``).
Equity is marked at each bar's close: starting cash plus the cash flows of the fills so far plus the
positions at the close. ``max_drawdown`` is the largest fall of that equity from a previous peak;
``sharpe`` is the mean over the standard deviation of the per-bar-time equity returns, annualised by
the number of bar times per year the data itself shows (0 when it cannot be computed).
"""

from __future__ import annotations

import math
import sqlite3
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from autoquant.domain.bars import Bar
from autoquant.domain.values import Side, iso_utc

YEAR_S = 365.25 * 86_400
#: Fees are split between round trips to this quantum (the paper exchange's own fee quantum).
FEE_QUANTUM = Decimal("0.0001")
#: At most this many points of the equity curve are kept for the chart.
CURVE_POINTS = 2_000


@dataclass(frozen=True)
class LedgerFill:
    strategy_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    ts_ns: int


@dataclass(frozen=True)
class Trade:
    strategy_id: str
    symbol: str
    side: str
    qty: Decimal
    entry_ns: int
    entry_price: Decimal
    exit_ns: int
    exit_price: Decimal
    pnl: Decimal
    fees: Decimal

    def as_json(self) -> dict[str, str]:
        return {
            "strategy_id": self.strategy_id,
            "symbol": self.symbol,
            "side": self.side,
            "qty": str(self.qty),
            "entry_time": iso_utc(self.entry_ns),
            "entry_price": str(self.entry_price),
            "exit_time": iso_utc(self.exit_ns),
            "exit_price": str(self.exit_price),
            "pnl": str(self.pnl),
            "fees": str(self.fees),
        }


def ledger_fills(path: Path) -> list[LedgerFill]:
    """Every fill of a ledger in ledger order (times: the broker's, else the local receipt)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT strategy_id, symbol, side, qty, price, fee, coalesce(broker_ts_ns, local_ts_ns)"
            " FROM fills ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()
    return [
        LedgerFill(row[0], row[1], Side(row[2]), Decimal(row[3]), Decimal(row[4]), Decimal(row[5]), row[6])
        for row in rows
    ]


def decision_counts(path: Path) -> dict[str, dict[str, int]]:
    """Decisions counted by action, then reason."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT action, reason, count(*) FROM decisions GROUP BY action, reason ORDER BY action, reason"
        ).fetchall()
    finally:
        conn.close()
    counts: dict[str, dict[str, int]] = {}
    for action, reason, count in rows:
        counts.setdefault(action, {})[reason] = count
    return counts


def _part(fee: Decimal, qty: Decimal, whole: Decimal) -> Decimal:
    return (fee * qty / whole).quantize(FEE_QUANTUM, rounding=ROUND_HALF_UP)


@dataclass
class _Lot:
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal  # the fee still attributed to the open quantity
    ts_ns: int


def round_trips(fills: Iterable[LedgerFill]) -> tuple[list[Trade], dict[tuple[str, str], Decimal]]:
    """Closed round trips, FIFO per (strategy, symbol), and the open position left per key."""
    books: dict[tuple[str, str], deque[_Lot]] = {}
    trades: list[Trade] = []
    for fill in fills:
        lots = books.setdefault((fill.strategy_id, fill.symbol), deque())
        qty, fee_left = fill.qty, fill.fee
        while qty > 0 and lots and lots[0].side is not fill.side:
            lot = lots[0]
            take = min(qty, lot.qty)
            # A part of a fee is rounded to the fee quantum; the rest stays with what is left.
            entry_fee = lot.fee if take == lot.qty else _part(lot.fee, take, lot.qty)
            exit_fee = fee_left if take == qty else _part(fill.fee, take, fill.qty)
            gross = (fill.price - lot.price) * take * lot.side.sign
            fees = entry_fee + exit_fee
            trades.append(
                Trade(
                    strategy_id=fill.strategy_id,
                    symbol=fill.symbol,
                    side="long" if lot.side is Side.BUY else "short",
                    qty=take,
                    entry_ns=lot.ts_ns,
                    entry_price=lot.price,
                    exit_ns=fill.ts_ns,
                    exit_price=fill.price,
                    pnl=gross - fees,
                    fees=fees,
                )
            )
            lot.qty -= take
            lot.fee -= entry_fee
            qty -= take
            fee_left -= exit_fee
            if lot.qty == 0:
                lots.popleft()
        if qty > 0:
            lots.append(_Lot(fill.side, qty, fill.price, fee_left, fill.ts_ns))
    open_positions = {
        key: sum((lot.qty * lot.side.sign for lot in lots), Decimal(0)) for key, lots in books.items() if lots
    }
    return trades, open_positions


@dataclass
class EquityCurve:
    """Equity marked at each bar time, with its peak, drawdown and returns."""

    starting_cash: Decimal
    final: Decimal = Decimal(0)
    max_drawdown: Decimal = Decimal(0)
    points: list[tuple[int, Decimal, Decimal]] = field(default_factory=list)
    returns_sum: float = 0.0
    returns_sq: float = 0.0
    returns_n: int = 0
    first_ns: int | None = None
    last_ns: int | None = None


def equity_curve(bars: Iterator[Bar], fills: list[LedgerFill], starting_cash: Decimal) -> EquityCurve:
    """Mark the account at every bar time (after that time's fills), streaming the bars once."""
    curve = EquityCurve(starting_cash=starting_cash, final=starting_cash)
    cash = starting_cash
    held: dict[str, Decimal] = {}
    closes: dict[str, Decimal] = {}
    at = 0
    peak = starting_cash
    previous: Decimal | None = None
    kept: list[tuple[int, Decimal, Decimal]] = []
    stride = 1
    current_ns: int | None = None

    def mark(ts_ns: int) -> None:
        nonlocal peak, previous, stride, kept
        equity = cash + sum(
            (qty * closes.get(symbol, Decimal(0)) for symbol, qty in held.items()), Decimal(0)
        )
        peak = max(peak, equity)
        drawdown = peak - equity
        curve.max_drawdown = max(curve.max_drawdown, drawdown)
        if previous is not None and previous > 0:
            change = float((equity - previous) / previous)
            curve.returns_sum += change
            curve.returns_sq += change * change
            curve.returns_n += 1
        previous = equity
        curve.final = equity
        if curve.first_ns is None:
            curve.first_ns = ts_ns
        curve.last_ns = ts_ns
        kept.append((ts_ns, equity, drawdown))
        if len(kept) >= 2 * CURVE_POINTS:
            kept = kept[::2]
            stride *= 2

    for bar in bars:
        ts = bar.close_ns
        if current_ns is not None and ts != current_ns:
            while at < len(fills) and fills[at].ts_ns <= current_ns:
                cash, held = _book(fills[at], cash, held)
                at += 1
            mark(current_ns)
        current_ns = ts
        closes[bar.symbol] = bar.close
    if current_ns is not None:
        while at < len(fills):
            cash, held = _book(fills[at], cash, held)
            at += 1
        mark(current_ns)
    curve.points = kept
    return curve


def _book(fill: LedgerFill, cash: Decimal, held: dict[str, Decimal]) -> tuple[Decimal, dict[str, Decimal]]:
    flow = fill.qty * fill.price
    cash = cash - flow - fill.fee if fill.side is Side.BUY else cash + flow - fill.fee
    held[fill.symbol] = held.get(fill.symbol, Decimal(0)) + fill.qty * fill.side.sign
    return cash, held


def sharpe(curve: EquityCurve) -> float:
    n = curve.returns_n
    if n < 2 or curve.first_ns is None or curve.last_ns is None or curve.last_ns <= curve.first_ns:
        return 0.0
    mean = curve.returns_sum / n
    variance = (curve.returns_sq - n * mean * mean) / (n - 1)
    if variance <= 0:
        return 0.0
    per_year = n / ((curve.last_ns - curve.first_ns) / 1e9 / YEAR_S)
    return round(mean / math.sqrt(variance) * math.sqrt(per_year), 6)


def summary(
    *,
    trades: list[Trade],
    open_positions: dict[tuple[str, str], Decimal],
    fills: list[LedgerFill],
    curve: EquityCurve,
    bars: int,
    decisions: dict[str, dict[str, int]],
    fill_rule: str,
    inputs_sha256: str,
    wall_s: float,
) -> dict[str, Any]:
    """The ``--json`` object (and report.json)."""
    realized = sum((trade.pnl for trade in trades), Decimal(0))
    fees = sum((fill.fee for fill in fills), Decimal(0))
    return {
        "trades": [trade.as_json() for trade in trades],
        "open_positions": [
            {"strategy_id": strategy_id, "symbol": symbol, "qty": str(qty)}
            for (strategy_id, symbol), qty in sorted(open_positions.items())
            if qty != 0
        ],
        "total_pnl": str(realized),
        "fees": str(fees),
        "bars": bars,
        "decisions": decisions,
        "equity_final": str(curve.final),
        "max_drawdown": str(curve.max_drawdown),
        "sharpe": sharpe(curve),
        "fill_rule": fill_rule,
        "wall_s": round(wall_s, 3),
        "bars_per_s": round(bars / wall_s, 1) if wall_s > 0 else None,
        "inputs_sha256": inputs_sha256,
    }
