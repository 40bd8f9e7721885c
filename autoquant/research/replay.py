"""``autoquant replay --ledger LIVE.db``: rerun each strategy on what it saw, decision by decision.

Every decision the strategy worker records carries what its strategy saw (migration 0004): the bars
(kept once each in ``bars``) and the rest of its state (holdings, freshness, how many bars per symbol)
in ``decision_states``. Replay rebuilds each state exactly, calls the configured strategy's ``decide``
again and compares what comes out with what was recorded: action, reason, quantity, order type,
limit and stop price. Identical means the strategy code and parameters in the config are the ones
that traded (research/live parity); any difference is listed. Decisions recorded before the ledger
kept states cannot be rebuilt and are counted apart, never guessed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from autoquant.domain.decisions import Decision
from autoquant.domain.strategy import Strategy, decisions_of
from autoquant.domain.values import iso_utc
from autoquant.errors import AutoquantError
from autoquant.ledger.connection import readonly_uri
from autoquant.ledger.seen import SeenDecision, seen_decisions, state_of

#: What is compared, decision by decision.
FIELDS = ("action", "reason", "qty", "order_type", "limit_price", "stop_price")


@dataclass(frozen=True)
class Difference:
    strategy_id: str
    data_time_ns: int
    symbol: str
    field: str
    live: str
    replayed: str


@dataclass
class ReplayOutcome:
    decisions: int
    differences: list[Difference]
    not_replayable: int


def _recorded(decision: SeenDecision) -> dict[str, str]:
    intent = decision.intent or {}
    return {
        "action": decision.action,
        "reason": decision.reason,
        "qty": _number(intent.get("qty")),
        "order_type": str(intent.get("order_type") or ""),
        "limit_price": _number(intent.get("limit_price")),
        "stop_price": _number(intent.get("stop_price")),
    }


def _replayed(decision: Decision) -> dict[str, str]:
    intent = decision.intent
    return {
        "action": decision.action.value,
        "reason": decision.reason,
        "qty": "" if intent is None else _number(intent.qty),
        "order_type": "" if intent is None else intent.order_type.value,
        "limit_price": "" if intent is None else _number(intent.limit_price),
        "stop_price": "" if intent is None else _number(intent.stop_price),
    }


def _number(value: Any) -> str:
    """Decimal text compared by value (``10`` and ``10.0`` are the same quantity)."""
    if value is None or value == "":
        return ""
    return str(Decimal(str(value)).normalize())


def replay(
    ledger_path: Path, strategies: Iterable[Strategy], from_ns_: int | None = None, to_ns_: int | None = None
) -> ReplayOutcome:
    """Rerun every recorded decision (bar time within [from, to]) and list the differences."""
    by_id = {strategy.id: strategy for strategy in strategies}
    conn = sqlite3.connect(readonly_uri(ledger_path), uri=True)
    try:
        recorded = seen_decisions(conn, from_ns_, to_ns_)
        unknown = sorted({d.strategy_id for d in recorded} - set(by_id))
        if unknown:
            raise AutoquantError(
                f"the ledger has decisions of strategies {', '.join(unknown)} that the config does not "
                "define: replay with the config the daemon ran"
            )
        groups: dict[tuple[str, int], list[SeenDecision]] = {}
        for decision in recorded:
            groups.setdefault((decision.strategy_id, decision.data_time_ns), []).append(decision)
        differences: list[Difference] = []
        not_replayable = 0
        for (strategy_id, data_time_ns), live in groups.items():
            body = next((d.state for d in live if d.state is not None), None)
            if body is None:
                not_replayable += len(live)
                continue
            state = state_of(conn, live[0], body)
            again = {d.symbol: d for d in decisions_of(by_id[strategy_id].decide(state))}
            for decision in live:
                before = _recorded(decision)
                redo = again.pop(decision.symbol, None)
                after = {name: "(none)" for name in FIELDS} if redo is None else _replayed(redo)
                differences.extend(
                    Difference(strategy_id, data_time_ns, decision.symbol, name, before[name], after[name])
                    for name in FIELDS
                    if before[name] != after[name]
                )
            for symbol, extra in sorted(again.items()):
                after = _replayed(extra)
                differences.append(
                    Difference(strategy_id, data_time_ns, symbol, "action", "(none)", after["action"])
                )
    finally:
        conn.close()
    return ReplayOutcome(len(recorded), differences, not_replayable)


def table(differences: list[Difference]) -> str:
    head = ("strategy", "bar time", "symbol", "field", "live", "replay")
    rows = [
        (d.strategy_id, iso_utc(d.data_time_ns)[:19] + "Z", d.symbol, d.field, d.live, d.replayed)
        for d in differences
    ]
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [head, *rows]
    )
