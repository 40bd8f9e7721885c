"""``autoquant doctor``: is the config valid and the ledger whole? Lists every problem it finds.

The ledger check itself is ``autoquant.ledger.verify`` (``backup`` and ``restore`` verify with it too).
"""

from __future__ import annotations

from pathlib import Path

from autoquant.ledger import integrity
from autoquant.ledger.settings import BackupSettings
from autoquant.operator.replica import ReplicaError, replica_lag


def check_ledger(path: Path) -> list[str]:
    """Problems with the ledger file; an empty list means healthy. Never modifies the file."""
    return integrity.check_ledger(path)


def check_replica(settings: BackupSettings, ledger: Path) -> tuple[str | None, list[str]]:
    """The Litestream replica's lag as one line, and the problems (none when no replica is configured)."""
    if settings.litestream_config is None:
        return None, []
    try:
        lag = replica_lag(settings.litestream_config, ledger)
    except ReplicaError as error:
        return None, [f"replica: {error}"]
    line = f"replica: {lag.describe()} ({settings.litestream_config})"
    if lag.lag_s > settings.max_replica_lag_s:
        limit = settings.max_replica_lag_s
        return line, [f"replica lag {lag.lag_s:.0f} s exceeds [backup] max_replica_lag_s {limit:.0f}"]
    return line, []
