"""The whole daemon in this process: the embedded paper exchange, synthetic or CSV bars, a temp ledger.

``Daemon(config).run()`` runs as a task; the test reads the ledger from outside (read-only SQLite) the
way an operator's ``autoquant status`` would, and stops it with ``request_stop()`` (what SIGTERM does).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoquant.domain.decisions import Decision
from autoquant.domain.orders import OrderStatus
from autoquant.domain.strategy import StrategyState
from autoquant.errors import ConfigError
from autoquant.ledger import Ledger
from autoquant.marketdata.source import MarketDataError
from autoquant.runtime.config import Config, parse
from autoquant.runtime.daemon import Daemon
from autoquant.runtime.sdnotify import Notifier
from tests.e2e.daemon_harness import query

DRAIN_TIMEOUT_S = 5.0


def settings(root: Path, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ledger": {"path": str(root / "ledger.db")},
        "paper": {"state_path": str(root / "paper.db"), "latency_s": 0.02},
        "marketdata": {"symbols": ["AAPL", "MSFT"], "bar_seconds": 0.05},
        "strategies": [
            {"id": "sma-aapl", "kind": "sma_cross", "symbol": "AAPL", "fast": 2, "slow": 4, "qty": "3"},
            {"id": "sma-msft", "kind": "sma_cross", "symbol": "MSFT", "fast": 2, "slow": 4, "qty": "2"},
        ],
        "reconcile": {"interval_s": 1.0, "resubmit_grace_s": 0.5},
        "daemon": {"drain_timeout_s": DRAIN_TIMEOUT_S},
    }
    data.update(overrides)
    return data


def make_daemon(config: Config) -> Daemon:
    return Daemon(config, notifier=Notifier(None))


async def wait_until(condition: Callable[[], object], what: str, timeout_s: float = 20.0) -> None:
    """Poll ``condition`` with a short sleep until it is truthy, or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.02)


async def stop(daemon: Daemon, task: asyncio.Task[int]) -> tuple[int, float]:
    """request_stop() and wait for run() to return; (exit code, seconds it took)."""
    started = time.monotonic()
    daemon.request_stop()
    code = await asyncio.wait_for(task, timeout=DRAIN_TIMEOUT_S + 5)
    return code, time.monotonic() - started


async def test_daemon_is_ready_after_startup_reconciliation_trades_and_drains(tmp_path: Path) -> None:
    """Startup reconciliation precedes every decision; fills land; stop returns 0 in time; nothing pending."""
    config = parse(settings(tmp_path))
    daemon = make_daemon(config)
    ledger_db = config.ledger.path
    task = asyncio.create_task(daemon.run())
    try:
        await wait_until(lambda: daemon.ready.is_set() or task.done(), "ready")
        assert not task.done(), task.exception() if task.done() else None
        startup = query(ledger_db, "SELECT finished_ns FROM reconciliations WHERE trigger = 'startup'")
        assert startup, "READY before the start-up reconciliation was recorded"
        await wait_until(lambda: query(ledger_db, "SELECT 1 FROM fills LIMIT 1"), "a fill")
    finally:
        code, took = await stop(daemon, task)
    assert code == 0
    assert took < DRAIN_TIMEOUT_S, f"drain took {took:.2f}s"
    first_decision = query(ledger_db, "SELECT min(local_ts_ns) FROM decisions")[0][0]
    assert first_decision is not None and first_decision > startup[0][0]
    async with await Ledger.open(ledger_db) as ledger:
        open_orders = await ledger.open_orders()
    assert [o.client_order_id for o in open_orders if o.status is OrderStatus.UNKNOWN] == []
    assert [o.client_order_id for o in open_orders if o.status is OrderStatus.RESERVED] == [], (
        "the drain leaves no reservation behind"
    )


async def test_malformed_csv_row_fails_the_start_naming_the_line(tmp_path: Path) -> None:
    """A bad CSV row makes run() raise MarketDataError naming file and line; nothing is decided."""
    bars = tmp_path / "bars"
    bars.mkdir()
    (bars / "AAPL.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-02T14:30:00Z,100,101,99,100.5,1000\n"
        "2024-01-02T14:31:00Z,100,99,101,100.5,1000\n"
    )
    data = settings(
        tmp_path,
        marketdata={"symbols": ["AAPL"], "bar_seconds": 0.05, "source": "csv", "csv_path": str(bars)},
        strategies=[
            {"id": "sma-aapl", "kind": "sma_cross", "symbol": "AAPL", "fast": 2, "slow": 4, "qty": "3"}
        ],
    )
    daemon = make_daemon(parse(data))
    with pytest.raises(MarketDataError) as raised:
        await asyncio.wait_for(daemon.run(), timeout=10)
    assert "AAPL.csv:3" in str(raised.value)
    assert not daemon.ready.is_set()
    assert query(tmp_path / "ledger.db", "SELECT count(*) FROM decisions") in ([], [(0,)])


@pytest.mark.parametrize(
    ("strategy", "key"),
    [
        ({"fast": 4, "slow": 4}, "invalid strategies[sma-aapl].params: fast (4)"),
        ({"fast": 5, "slow": 4}, "invalid strategies[sma-aapl].params: fast (5)"),
        ({"qty": "0"}, "invalid strategies[sma-aapl].params.qty"),
        ({"qty": "-1"}, "invalid strategies[sma-aapl].params.qty"),
        ({"fast": "two"}, "invalid strategies[sma-aapl].params.fast"),
        ({"slowest": 9}, "unknown key strategies[sma-aapl].params.slowest"),
        ({"kind": "momentum"}, "unknown strategies[sma-aapl].kind 'momentum'"),
    ],
)
def test_invalid_strategy_config_is_refused_naming_the_key(
    tmp_path: Path, strategy: dict[str, object], key: str
) -> None:
    """Wrong parameters and an unknown kind are ConfigErrors naming the key, before any ledger exists."""
    entry = {"id": "sma-aapl", "kind": "sma_cross", "symbol": "AAPL", "fast": 2, "slow": 4, "qty": "3"}
    data = settings(tmp_path, strategies=[{**entry, **strategy}])
    with pytest.raises(ConfigError) as raised:
        make_daemon(parse(data, tmp_path / "autoquant.toml"))
    message = str(raised.value)
    assert key in message and "autoquant.toml" in message
    assert not (tmp_path / "ledger.db").exists()


class ExplodingStrategy:
    """A strategy with a bug: every decision raises."""

    id = "sma-aapl"
    symbols = ("AAPL",)
    warmup = 1

    def __init__(self) -> None:
        self.calls = 0

    def decide(self, state: StrategyState) -> Decision:
        self.calls += 1
        raise RuntimeError("strategy bug")


async def test_crashing_strategy_is_restarted_then_halts_trading_and_the_daemon_keeps_running(
    tmp_path: Path,
) -> None:
    """Repeated strategy crashes halt trading; the daemon lives on and stops cleanly."""
    config = parse(settings(tmp_path))
    daemon = make_daemon(config)
    exploding = ExplodingStrategy()
    daemon.strategies = [exploding]
    ledger_db = config.ledger.path
    task = asyncio.create_task(daemon.run())
    try:
        await wait_until(
            lambda: task.done() or query(ledger_db, "SELECT 1 FROM controls WHERE actor = 'supervisor'"),
            "the supervisor's halt",
        )
        assert not task.done()
        calls_at_halt = exploding.calls
        assert calls_at_halt >= 3
        await wait_until(lambda: exploding.calls > calls_at_halt, "a restart after the halt")
        reconciled = len(query(ledger_db, "SELECT 1 FROM reconciliations"))
        await wait_until(
            lambda: len(query(ledger_db, "SELECT 1 FROM reconciliations")) > reconciled,
            "a reconciliation run while halted",
        )
        assert not task.done()
    finally:
        code, _ = await stop(daemon, task)
    assert code == 0
    async with await Ledger.open(ledger_db) as ledger:
        state = await ledger.control_state()
    assert state.trading_state.value == "halted"
    assert "worker strategy keeps crashing" in state.state_reason and "strategy bug" in state.state_reason
    assert query(ledger_db, "SELECT count(*) FROM controls WHERE kind = 'halt'") == [(1,)]
    assert query(ledger_db, "SELECT count(*) FROM orders") == [(0,)]
