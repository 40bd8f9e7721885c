"""``signal/run``: a configured strategy's decision on the current bars, without acting on it.

The state is what the strategy saw at its newest recorded decision (the ledger keeps each decision's
bars and state, migration 0004), with its holdings brought up to now (its positions and open orders
in the ledger) and the data's age measured now. The strategy decides on it exactly as the strategy
worker would call it; nothing is recorded and nothing is sent.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from autoquant.domain.strategy import Holdings, decisions_of
from autoquant.domain.values import to_ns
from autoquant.ledger import LedgerReader
from autoquant.operator.commands import CommandInvalid, CommandNotFound
from autoquant.runtime.config import Config
from autoquant.strategies import build_strategies

BARS_SOURCE = "ledger (the bars the strategy saw at its newest recorded decision)"


async def run_signal(reader: LedgerReader, config: Config, strategy_id: str) -> dict[str, Any]:
    settings = next((s for s in config.strategies if s.id == strategy_id), None)
    if settings is None:
        known = ", ".join(s.id for s in config.strategies) or "none"
        raise CommandInvalid(
            f"{strategy_id!r} is not a configured strategy (configured: {known})", "strategy"
        )
    [strategy] = build_strategies([settings], config.source)
    seen = await reader.latest_strategy_state(strategy_id)
    if seen is None:
        raise CommandNotFound(f"no bars recorded for {strategy_id} yet: the daemon has not decided on any")
    positions = await reader.positions()
    orders = [o for o in await reader.open_orders() if o.strategy_id == strategy_id]
    holdings = {}
    for symbol in seen.symbols:
        mine = [o for o in orders if o.symbol == symbol]
        held = positions.get((strategy_id, symbol))
        holdings[symbol] = Holdings(
            position_qty=Decimal(0) if held is None else held.qty,
            open_order_count=len(mine),
            open_order_qty=sum((o.remaining_qty * o.side.sign for o in mine), Decimal(0)),
        )
    newest = min(bars[-1].close_time for bars in seen.bars.values())
    age_ns = max(0, time.time_ns() - to_ns(newest))
    state = seen.model_copy(
        update={
            "holdings": holdings,
            "data_age_ns": age_ns,
            "data_fresh": age_ns <= config.risk.max_data_age_s * 1e9,
        }
    )
    decisions = decisions_of(strategy.decide(state))
    return {
        "strategy_id": strategy_id,
        "symbols": list(seen.symbols),
        "decisions": [
            {
                "symbol": d.symbol,
                "action": d.action.value,
                "reason": d.reason,
                "inputs": d.inputs,
                "intent": None if d.intent is None else d.intent.model_dump(mode="json"),
            }
            for d in decisions
        ],
        "bars_used": sum(len(bars) for bars in seen.bars.values()),
        "bars_source": BARS_SOURCE,
        "data_age_s": age_ns / 1e9,
    }
