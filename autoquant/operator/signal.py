"""``signal/run``: a configured strategy's decision on the current bars, without acting on it.

The bars are the ones the ledger recorded: each decision keeps the close of the bar it decided on, so
the strategy sees that series (open = high = low = close, volume 0, source ``ledger``). A strategy that
reads only closes (the built-in SMA cross) decides exactly as the daemon would on those bars; one that
reads highs, lows or volume sees a flattened bar, and says so in the returned ``bars_source``.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from autoquant.domain.bars import Bar
from autoquant.domain.strategy import StrategyState
from autoquant.domain.values import from_ns
from autoquant.ledger import LedgerReader
from autoquant.operator.commands import CommandInvalid, CommandNotFound
from autoquant.runtime.config import Config
from autoquant.strategies import build_strategy

BARS_SOURCE = "ledger (each decision's close; open = high = low = close, volume 0)"


async def run_signal(reader: LedgerReader, config: Config, strategy_id: str) -> dict[str, Any]:
    settings = next((s for s in config.strategies if s.id == strategy_id), None)
    if settings is None:
        known = ", ".join(s.id for s in config.strategies) or "none"
        raise CommandInvalid(
            f"{strategy_id!r} is not a configured strategy (configured: {known})", "strategy"
        )
    strategy = build_strategy(settings)
    records = await reader.decisions(strategy_id=strategy_id, limit=max(strategy.warmup, 1) * 4)
    closes: dict[int, str] = {}
    for record in records:
        if record.close is not None:
            closes[record.data_time_ns] = record.close
    if not closes:
        raise CommandNotFound(f"no bars recorded for {strategy_id} yet: the daemon has not decided on any")
    length = timedelta(seconds=config.marketdata.bar_seconds)
    bars = tuple(
        Bar(
            symbol=settings.symbol,
            open_time=from_ns(t) - length,
            close_time=from_ns(t),
            open=Decimal(c),
            high=Decimal(c),
            low=Decimal(c),
            close=Decimal(c),
            volume=Decimal(0),
            source="ledger",
        )
        for t, c in sorted(closes.items())[-max(strategy.warmup, 1) :]
    )
    position = (await reader.positions()).get((strategy_id, settings.symbol))
    mine = [
        o for o in await reader.open_orders() if o.strategy_id == strategy_id and o.symbol == settings.symbol
    ]
    open_qty = sum((o.remaining_qty if o.side.value == "buy" else -o.remaining_qty for o in mine), Decimal(0))
    age_ns = max(0, time.time_ns() - max(closes))
    state = StrategyState(
        strategy_id=strategy_id,
        symbol=settings.symbol,
        bars=bars,
        position_qty=Decimal(0) if position is None else position.qty,
        open_order_count=len(mine),
        open_order_qty=open_qty,
        data_fresh=age_ns <= config.risk.max_data_age_s * 1e9,
        data_age_ns=age_ns,
        decision_id="signal-run",
    )
    decision = strategy.decide(state)
    return {
        "strategy_id": strategy_id,
        "symbol": settings.symbol,
        "action": decision.action.value,
        "reason": decision.reason,
        "inputs": decision.inputs,
        "intent": None if decision.intent is None else decision.intent.model_dump(mode="json"),
        "bars_used": len(bars),
        "bars_source": BARS_SOURCE,
        "data_age_s": age_ns / 1e9,
    }
