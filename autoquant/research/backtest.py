"""``autoquant backtest``: the production path on recorded bars, under the virtual clock.

The same composition root builds the same strategy worker, risk gate, ledger, execution worker and
embedded paper exchange as the daemon; only the clock (``VirtualClock``: time jumps to the next bar
once everything the previous one set off has settled) and the bar source (recorded bars released at
their close) differ. Orders get their deterministic client order ids, are reserved in the ledger,
re-checked before submission and filled by the paper exchange's ``next_bar`` rule. Nothing in the
path reads the wall clock, so two runs on the same inputs write the same decisions, orders and fills.

Periodic machinery that would only tick in empty virtual time is paced to the bars: the kill switch
checks (and polls the account, whose equity the risk gate's loss and drawdown limits read) and the
execution worker sweeps every ``CHECK_EVERY_S`` of virtual time or every bar, whichever is longer;
reconciliation runs at the start (the gate, as in the daemon) and once at the end.

What a backtest does differently from the daemon, for speed, and why it keeps the contracts: holds
(decisions that act on nothing) are handed to the ledger without waiting for each to commit; they are
written in one transaction ahead of the next write of any kind, so an acting decision, its risk event
and its reservation still commit (after every hold before them) before its order is handed to the
execution worker. The run's ledger is a scratch file with no fsync per commit (rebuilt by rerunning),
whose batches run on the loop's own thread right after the turn that queued them (``on_loop``): the
same transactions, committed before anyone is answered, without a thread round trip per commit that the
virtual clock would sit idle for; and the order in which same-instant reads and writes land is the
loop's, never the threads' timing. Other connections' commits to it (there are none in a normal run)
are looked for once per check period rather than on every read. The paper venue's ``paper.db`` is a
scratch file too (``synchronous=OFF``: the same rows; the daemon's venue keeps its syncs).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from autoquant.brokers.settings import PaperBrokerSettings, PaperSettings
from autoquant.clocks import VirtualClock
from autoquant.domain.values import to_ns
from autoquant.errors import AutoquantError
from autoquant.ledger import Ledger
from autoquant.marketdata.reorder import ReorderBuffer
from autoquant.marketdata.settings import MarketDataSettings
from autoquant.research.bars import BarSummary
from autoquant.research.source import ClockedBars
from autoquant.runtime.config import Config, LedgerSettings
from autoquant.runtime.system import build_system, open_paper
from autoquant.strategies import build_strategies

#: The fill rule a backtest runs the paper exchange with (stated in the report).
FILL_RULE = (
    "next_bar: a market order fills at the open of the first bar released after it was accepted; "
    "limit and stop orders fill when a later bar's range reaches them, at their price, or at the "
    "open when the bar gaps through; plus [paper] slippage_bps and fee_bps, partial fills with "
    "[paper] partial_fill_probability"
)


#: How often (virtual seconds) the kill switch and the execution sweep run, at least once per bar.
CHECK_EVERY_S = 300.0


@dataclass
class RunOutcome:
    """What the run itself counted (the report reads the rest from the ledger)."""

    bars: int
    decisions: Counter[tuple[str, str]]
    wall_s: float
    reconciled_clean: bool
    virtual_end_ns: int
    strategy_ids: list[str] = field(default_factory=list)
    #: Turns of the event loop the run took (the benchmark reports them per bar).
    loop_turns: int = 0


def backtest_config(config: Config, summary: BarSummary, workdir: Path) -> Config:
    """The config as the backtest runs it: its ledger and paper state in ``workdir``, the recorded bars
    as the market data, the ``next_bar`` fill rule. Strategies, risk and [paper] costs are kept."""
    symbols = sorted(summary.symbols)
    for strategy in config.strategies:
        for symbol in strategy.traded:
            if symbol not in summary.symbols:
                raise AutoquantError(
                    f"strategies[{strategy.id}] trades {symbol} but the bars have no {symbol}: "
                    f"the bars hold {', '.join(symbols)}"
                )
    paper: PaperSettings = config.paper.model_copy(
        update={"state_path": workdir / "paper.db", "fill_rule": "next_bar"}
    )
    marketdata = MarketDataSettings.model_validate(
        config.marketdata.model_dump()
        | {"source": "csv", "csv_path": summary.files[0], "symbols": symbols, "reorder_window": 0}
    )
    return config.model_copy(
        update={
            "ledger": LedgerSettings(path=workdir / "ledger.db"),
            "paper": paper,
            "marketdata": marketdata,
            # Always the embedded paper exchange: a backtest never reaches a real broker.
            "broker": PaperBrokerSettings(),
        }
    )


async def _run(
    config: Config,
    clock: VirtualClock,
    summary: BarSummary,
    start: datetime | None,
    end: datetime | None,
    on_bar: Callable[[int], None] | None,
) -> RunOutcome:
    strategies = build_strategies(config.strategies, config.source)
    bar_s = config.marketdata.bar_seconds
    # The run's own ledger: rebuilt by running again, so no fsync per commit (the rows are the same).
    # Its batches run on the loop (``on_loop``): no thread hop per commit on the order path.
    ledger = await Ledger.open(config.ledger.path, durable=False, on_loop=True)
    source: ClockedBars | None = None
    try:
        # Its venue's file is a scratch file too: the same rows, no sync to disk.
        async with open_paper(config, clock, durable=False) as handle:
            exchange = handle.exchange
            assert exchange is not None  # backtest_config always picks the embedded paper exchange
            source = ClockedBars(
                summary.files,
                bar_seconds=bar_s,
                clock=clock,
                start=start,
                end=end,
                on_bar=on_bar,
                to_exchange=exchange.on_bar,
            )
            system = build_system(config, clock, ledger, handle, source=source, strategies=strategies)
            # Paced to the bars: a tick in the empty time between two bars would find nothing new.
            every = max(bar_s, CHECK_EVERY_S)
            system.killswitch.poll_s = every
            system.killswitch.account_poll_s = every
            system.execution.sweep_interval_s = every
            ledger.foreign_poll_s = every
            assert system.market_data is not None  # built with a source
            # Recorded bars were checked sorted and unique; their holes are nights, weekends, holidays.
            system.market_data.reorder = ReorderBuffer(window=0, interval_s=bar_s, report_holes=False)
            # The source hands each bar to the exchange before the strategies see it (see source.py).
            system.market_data.on_bar = [system.strategy_worker.on_bar]
            # Holds go to the ledger in batches, ahead of the next acting decision (see StrategyWorker).
            system.strategy_worker.defer_holds = True
            specs = system.worker_specs()
            supervisor = system.supervisor
            async with asyncio.TaskGroup() as group:
                supervisor.start(group, specs["updates"])
                startup = await system.reconciler.run("startup")
                if not startup.clean:
                    raise AutoquantError(f"the backtest's start-up reconciliation found: {startup.summary}")
                for name in ("execution", "killswitch", "strategy"):
                    supervisor.start(group, specs[name])
                await system.gate.refresh_controls()
                system.strategy_worker.enabled.set()
                supervisor.start(group, specs["marketdata"])
                await system.market_data.source_ended.wait()
                # One bar's time past the last bar: everything it set off has settled by then.
                await clock.sleep(bar_s)
                if supervisor.fatal is not None:
                    name, error = supervisor.fatal
                    raise AutoquantError(f"worker {name} failed during the backtest: {error}") from error
                system.strategy_worker.enabled.clear()
                async with system.strategy_worker.busy:
                    await supervisor.stop("strategy")
                await ledger.flush()
                await system.execution.settle()
                final = await system.reconciler.run("backtest_end")
                await supervisor.stop_all()
            return RunOutcome(
                bars=source.released,
                decisions=system.strategy_worker.by_reason,
                wall_s=0.0,
                reconciled_clean=final.clean,
                virtual_end_ns=clock.now_ns(),
                strategy_ids=[s.id for s in strategies],
                loop_turns=clock.turns,
            )
    finally:
        if source is not None:
            await source.close()
        await ledger.close()


def run_backtest(
    config: Config,
    summary: BarSummary,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    on_bar: Callable[[int], None] | None = None,
) -> RunOutcome:
    """Run the whole path over the bars on a fresh virtual clock; ``config`` from ``backtest_config``."""
    assert summary.first is not None  # check_bars refuses an empty window
    # The clock starts at the first bar's start: the first bar is released one bar length later.
    clock = VirtualClock(to_ns(summary.first), autojump_threshold_s=0.0)
    started = time.perf_counter()  # the run's duration, reported; never part of the trading path
    outcome: RunOutcome = clock.run(_run(config, clock, summary, start, end, on_bar))
    outcome.wall_s = time.perf_counter() - started
    return outcome
