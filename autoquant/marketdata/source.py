"""The bar-source port and the market-data errors.

A ``BarSource`` is an async iterator of validated ``Bar`` values, any symbol, roughly in time order
(the ``ReorderBuffer`` straightens out what arrives late). ``close`` releases connections and is
safe to call twice. Sources never trade and never read the ledger.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Protocol

from autoquant.domain.bars import Bar
from autoquant.errors import AutoquantError

#: ``asyncio.sleep`` or a fake that advances a FakeClock, so tests never wait real time.
Sleep = Callable[[float], Awaitable[None]]


class BarSource(Protocol):
    def __aiter__(self) -> AsyncIterator[Bar]: ...

    async def close(self) -> None: ...


class MarketDataError(AutoquantError):
    """Market data cannot be read or trusted; no strategy may trade on it."""


class MalformedBarFile(MarketDataError):
    """A bar file has a bad header or row. Nothing from the file is emitted."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        super().__init__(f"{path}:{line}: {problem}")
