"""What a strategy saw when it decided: the bars (each once) and the rest of its state, for replay.

Written in the decision's own transaction by the strategy worker; read back by ``autoquant replay``
to rebuild each decision's state exactly and decide again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autoquant.domain.bars import Bar
from autoquant.domain.strategy import Holdings, StrategyState
from autoquant.domain.values import from_ns, to_ns


def insert_bars(conn: sqlite3.Connection, bars: Sequence[Bar]) -> None:
    conn.executemany(
        "INSERT INTO bars (symbol, open_ns, close_ns, open, high, low, close, volume, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (symbol, close_ns) DO NOTHING",
        [
            (
                bar.symbol,
                to_ns(bar.open_time),
                bar.close_ns,
                str(bar.open),
                str(bar.high),
                str(bar.low),
                str(bar.close),
                str(bar.volume),
                bar.source,
            )
            for bar in bars
        ],
    )


def insert_decision_state(conn: sqlite3.Connection, decision_id: str, state_json: str) -> None:
    conn.execute(
        "INSERT INTO decision_states (decision_id, state_json) VALUES (?, ?)"
        " ON CONFLICT (decision_id) DO NOTHING",
        (decision_id, state_json),
    )


def bar_from_row(row: Sequence[Any]) -> Bar:
    return Bar(
        symbol=row[0],
        open_time=from_ns(row[1]),
        close_time=from_ns(row[2]),
        open=row[3],
        high=row[4],
        low=row[5],
        close=row[6],
        volume=row[7],
        source=row[8],
    )


def bars_until(conn: sqlite3.Connection, symbol: str, close_ns: int, count: int) -> tuple[Bar, ...]:
    """The ``count`` newest recorded bars of ``symbol`` closing at or before ``close_ns``, oldest first."""
    rows = conn.execute(
        "SELECT symbol, open_ns, close_ns, open, high, low, close, volume, source FROM bars"
        " WHERE symbol = ? AND close_ns <= ? ORDER BY close_ns DESC LIMIT ?",
        (symbol, close_ns, count),
    ).fetchall()
    return tuple(bar_from_row(row) for row in reversed(rows))


@dataclass(frozen=True)
class SeenDecision:
    """One recorded decision with what its strategy saw."""

    decision_id: str
    strategy_id: str
    symbol: str
    action: str
    reason: str
    data_time_ns: int
    intent: dict[str, Any] | None
    #: None for a decision recorded before the ledger kept states (it cannot be replayed).
    state: dict[str, Any] | None


def seen_decisions(
    conn: sqlite3.Connection, from_ns_: int | None = None, to_ns_: int | None = None
) -> list[SeenDecision]:
    """Every decision (bar time within [from, to]) with its recorded state, in ledger order."""
    rows = conn.execute(
        "SELECT d.decision_id, d.strategy_id, d.symbol, d.action, d.reason, d.data_time_ns,"
        " d.intent_json, s.state_json FROM decisions d"
        " LEFT JOIN decision_states s ON s.decision_id = d.decision_id"
        " WHERE d.data_time_ns >= ? AND d.data_time_ns <= ? ORDER BY d.seq",
        (from_ns_ if from_ns_ is not None else -(2**62), to_ns_ if to_ns_ is not None else 2**62),
    ).fetchall()
    return [
        SeenDecision(
            decision_id=row[0],
            strategy_id=row[1],
            symbol=row[2],
            action=row[3],
            reason=row[4],
            data_time_ns=row[5],
            intent=None if row[6] is None else json.loads(row[6]),
            state=None if row[7] is None else json.loads(row[7]),
        )
        for row in rows
    ]


def state_of(conn: sqlite3.Connection, decision: SeenDecision, body: dict[str, Any]) -> StrategyState:
    """The state a recorded decision's strategy saw, rebuilt exactly from ``bars`` and its state row."""
    symbols = tuple(body["symbols"])
    bars = {
        symbol: bars_until(conn, symbol, decision.data_time_ns, body["bars"][symbol]) for symbol in symbols
    }
    return StrategyState(
        strategy_id=decision.strategy_id,
        symbols=symbols,
        bars=bars,
        holdings={symbol: Holdings.model_validate(held) for symbol, held in body["holdings"].items()},
        data_fresh=body["data_fresh"],
        data_age_ns=body["data_age_ns"],
        data_time=from_ns(decision.data_time_ns),
    )


def latest_state(conn: sqlite3.Connection, strategy_id: str) -> StrategyState | None:
    """The state of the newest recorded decision of ``strategy_id`` (None before its first)."""
    row = conn.execute(
        "SELECT d.decision_id, d.strategy_id, d.symbol, d.action, d.reason, d.data_time_ns,"
        " d.intent_json, s.state_json FROM decisions d"
        " JOIN decision_states s ON s.decision_id = d.decision_id"
        " WHERE d.strategy_id = ? ORDER BY d.seq DESC LIMIT 1",
        (strategy_id,),
    ).fetchone()
    if row is None:
        return None
    decision = SeenDecision(row[0], row[1], row[2], row[3], row[4], row[5], None, json.loads(row[7]))
    assert decision.state is not None
    return state_of(conn, decision, decision.state)


def data_time(ns: int) -> str:
    return from_ns(ns).isoformat()
