"""What the API's routes share: the config, the token, one read-only ledger reader (opened when the ledger
first exists) and the write rate limiter."""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from pathlib import Path

from autoquant.errors import LedgerError
from autoquant.ledger import LedgerReader
from autoquant.operator import inspection
from autoquant.operator.backtest_jobs import BacktestJobs
from autoquant.runtime.config import Config


class LedgerUnavailable(LedgerError):
    """The ledger cannot be read yet (HTTP 503): the message says why and what to do."""


@dataclass
class WriteLimiter:
    """At most ``per_minute`` writes per client in any sliding minute."""

    per_minute: int
    _times: dict[str, collections.deque[float]] = field(default_factory=dict)

    def allow(self, client: str, now: float | None = None) -> bool:
        moment = time.monotonic() if now is None else now
        window = self._times.setdefault(client, collections.deque())
        while window and moment - window[0] >= 60.0:
            window.popleft()
        if len(window) >= self.per_minute:
            return False
        window.append(moment)
        return True


class ApiState:
    def __init__(self, config: Config, token: str) -> None:
        self.config = config
        self.token = token
        self.limiter = WriteLimiter(config.api.writes_per_minute)
        self.jobs = BacktestJobs(config)
        self._reader: LedgerReader | None = None
        self._opening = asyncio.Lock()

    @property
    def ledger_path(self) -> Path:
        return self.config.ledger.path

    @property
    def status_file(self) -> Path:
        from autoquant.runtime.daemon import heartbeat_path

        return heartbeat_path(self.config.ledger.path)

    async def reader(self) -> LedgerReader:
        """The read-only ledger; a ledger that does not exist yet (or is not migrated) is a 503."""
        if self._reader is not None:
            return self._reader
        async with self._opening:
            if self._reader is None:
                try:
                    self._reader = await inspection.open_readonly(self.ledger_path)
                except LedgerError as error:
                    raise LedgerUnavailable(str(error)) from None
        return self._reader

    async def close(self) -> None:
        await self.jobs.close()
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
