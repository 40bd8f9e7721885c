"""``autoquant replay``: a ledger's decisions rerun identically on what they saw, and a changed
strategy is caught decision by decision."""

from __future__ import annotations

import asyncio
from pathlib import Path

from autoquant.clocks import VirtualClock
from autoquant.runtime.config import load
from autoquant.runtime.daemon import Daemon
from autoquant.runtime.sdnotify import Notifier
from tests.ledger_sql import query
from tests.research.rig import SMA, cli, goog_rows, write_bars, write_config

#: 2026-03-02T14:30:00Z, a Monday at the US open.
START_NS = 1_772_461_800 * 1_000_000_000


def test_replay_of_a_live_paper_run_shows_no_difference(tmp_path: Path) -> None:
    """A daemon trades the embedded paper exchange on synthetic bars (virtual clock); replaying its
    ledger with the same config reproduces every decision; a different parameter does not."""
    config_path = tmp_path / "live.toml"
    body = f"""
[ledger]
path = "{tmp_path / "ledger.db"}"
[paper]
state_path = "{tmp_path / "paper.db"}"
latency_s = 0.5
[marketdata]
symbols = ["AAPL", "MSFT"]
bar_seconds = 60
[risk]
max_data_age_s = 180
[[strategies]]
id = "sma-aapl"
kind = "sma_cross"
symbol = "AAPL"
[strategies.params]
fast = 2
slow = 4
qty = "3"
"""
    config_path.write_text(body)
    config = load(config_path)
    clock = VirtualClock(START_NS, autojump_threshold_s=0.001)
    daemon = Daemon(config, clock=clock, notifier=Notifier(None))

    async def session() -> int:
        task = asyncio.create_task(daemon.run())
        await clock.sleep(15 * 60.0)
        daemon.request_stop()
        return await task

    assert clock.run(session()) == 0
    ledger = tmp_path / "ledger.db"
    decided = query(ledger, "SELECT count(*) FROM decisions WHERE action != 'hold'")[0][0]
    assert decided >= 2, "the session traded"
    code, text = cli("--config", str(config_path), "replay", "--ledger", str(ledger))
    assert code == 0, text
    assert "no difference" in text
    config_path.write_text(body.replace("fast = 2", "fast = 3"))
    code, text = cli("--config", str(config_path), "replay", "--ledger", str(ledger))
    assert code == 1
    assert "sma-aapl" in text and "differences" in text.splitlines()[-1]


def test_replay_of_a_backtest_and_its_window(tmp_path: Path) -> None:
    """A backtest's ledger replays identically, in whole or within --from/--to."""
    config = write_config(tmp_path / "sma.toml", write_bars(tmp_path / "GOOG.csv", goog_rows()[:150]), SMA)
    out = tmp_path / "run"
    code, _ = cli("--config", str(config), "backtest", "--out", str(out))
    assert code == 0
    code, text = cli("--config", str(config), "replay", "--ledger", str(out / "ledger.db"))
    assert (code, text) == (0, "replay: 150 decisions, no difference\n")
    code, text = cli(
        "--config", str(config), "replay", "--ledger", str(out / "ledger.db"), "--from", "2004-10-01"
    )
    assert code == 0 and "no difference" in text
    assert int(text.split()[1]) < 150
