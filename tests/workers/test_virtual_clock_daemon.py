"""The virtual clock drives the whole daemon: a trading session in virtual time, no real waiting.

The daemon runs on ``VirtualClock``'s event loop with one-minute bars (what a real Alpaca feed gives),
the embedded paper exchange and the production wiring. Forty virtual minutes pass in seconds: bars
close, strategies decide, orders are sent and filled, the reconciler runs on its interval, the kill
switch polls the account and obeys an operator's halt written by another connection, and the daemon
drains on request — every timestamp in the ledger is virtual.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from autoquant.clocks import VirtualClock
from autoquant.domain.controls import ACCOUNT, Control, ControlKind
from autoquant.ledger import Ledger
from autoquant.runtime.config import parse
from autoquant.runtime.daemon import Daemon
from autoquant.runtime.sdnotify import Notifier
from tests.ledger_sql import query

#: 2026-03-02T14:30:00Z, a Monday at the US open: the clock's start, so every stamp is checkable.
START_NS = 1_772_461_800 * 1_000_000_000
SESSION_S = 40 * 60.0
HALT_AT_S = 30 * 60.0


def session_config(root: Path) -> dict[str, Any]:
    return {
        "ledger": {"path": str(root / "ledger.db")},
        "paper": {"state_path": str(root / "paper.db"), "latency_s": 0.5},
        "marketdata": {"symbols": ["AAPL", "MSFT"], "bar_seconds": 60.0},
        "strategies": [
            {"id": "sma-aapl", "kind": "sma_cross", "symbol": "AAPL", "fast": 2, "slow": 4, "qty": "3"},
            {"id": "sma-msft", "kind": "sma_cross", "symbol": "MSFT", "fast": 2, "slow": 4, "qty": "2"},
        ],
        "reconcile": {"interval_s": 120.0},
        "risk": {"max_data_age_s": 180.0},
    }


def test_virtual_clock_drives_a_whole_daemon_session(tmp_path: Path) -> None:
    """Forty virtual minutes (decisions, fills, reconciliation, kill switch, drain) take seconds."""
    config = parse(session_config(tmp_path))
    clock = VirtualClock(START_NS, autojump_threshold_s=0.001)
    daemon = Daemon(config, clock=clock, notifier=Notifier(None))

    async def session() -> int:
        task = asyncio.create_task(daemon.run())
        await clock.sleep(HALT_AT_S)
        assert not task.done(), task.exception()
        assert daemon.ready.is_set()
        # The operator halts from another process: a control appended through its own connection.
        async with await Ledger.open(config.ledger.path) as cli:
            await cli.append_control(
                Control(
                    kind=ControlKind.HALT,
                    scope=ACCOUNT,
                    reason="drill",
                    actor="op",
                    local_ts_ns=clock.now_ns(),
                )
            )
        await clock.sleep(SESSION_S - HALT_AT_S)
        daemon.request_stop()
        return await task

    real_started = time.monotonic()
    assert clock.run(session()) == 0
    real_s = time.monotonic() - real_started

    # asyncio runs a timer once ``time() + clock resolution`` reaches it, and each jump adds a float:
    # the session ends at SESSION_S to within a microsecond, not to the last bit.
    assert clock.monotonic() >= SESSION_S - 1e-6
    assert real_s < SESSION_S / 20, f"{real_s:.1f}s of real time for {SESSION_S:.0f}s of virtual time"
    db = config.ledger.path
    end_ns = START_NS + int(clock.monotonic() * 1e9) + 1
    decisions = query(db, "SELECT count(*), min(local_ts_ns), max(local_ts_ns) FROM decisions")[0]
    assert decisions[0] >= 2 * (SESSION_S / 60 - 4) * 0.5, "strategies decided on the closed bars"
    assert START_NS <= decisions[1] <= decisions[2] < end_ns, "decisions carry virtual timestamps"
    fills = query(db, "SELECT count(*) FROM fills")[0][0]
    assert fills >= 1, "orders reached the paper exchange and filled"
    runs = query(db, "SELECT trigger, finished_ns FROM reconciliations ORDER BY seq")
    assert runs[0][0] == "startup"
    assert sum(1 for trigger, _ in runs if trigger == "periodic") >= (SESSION_S / 120) - 2
    polls = query(db, "SELECT count(*) FROM account_snapshots")[0][0]
    assert polls >= SESSION_S / 5 - 10, "the kill switch polled the account every 5 virtual seconds"
    halt_ns = START_NS + int(HALT_AT_S * 1e9)
    after_halt = query(db, "SELECT count(*) FROM orders WHERE local_ts_ns > ?", (halt_ns + 1_000_000_000,))
    assert after_halt == [(0,)], "nothing was reserved once the kill switch saw the halt"
    open_orders = query(
        db,
        "SELECT count(*) FROM orders o WHERE coalesce((SELECT e.status_after FROM order_events e"
        " WHERE e.client_order_id = o.client_order_id ORDER BY e.seq DESC LIMIT 1), 'reserved')"
        " IN ('reserved', 'unknown')",
    )
    assert open_orders == [(0,)], "the drain left nothing reserved or unknown"
