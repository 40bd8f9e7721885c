"""``[ledger]``: where the ledger file lives; ``[backup]``: the daemon's scheduled backups and the
Litestream replica ``autoquant doctor`` reports on."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from autoquant.domain.settings import Section


class LedgerSettings(Section):
    path: Path = Path("var/autoquant.db")


class BackupSettings(Section):
    #: Where the daemon writes a verified backup every ``every_s``; unset: no scheduled backups.
    dir: Path | None = None
    every_s: float = Field(default=3600.0, gt=0)
    #: How many scheduled backups to keep in ``dir`` (the oldest beyond that are deleted).
    keep: int = Field(default=24, ge=1)
    #: A Litestream config replicating the ledger (config/litestream.yml); doctor reports its lag.
    litestream_config: Path | None = None
    #: The replica's lag past which doctor calls it a problem.
    max_replica_lag_s: float = Field(default=60.0, gt=0)
