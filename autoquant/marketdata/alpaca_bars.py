"""Live minute bars from Alpaca's market-data websocket, through alpaca-py.

Stocks go through ``StockDataStream`` (feed ``iex`` or ``sip``), crypto symbols (``BTC/USD``) through
``CryptoDataStream``. ``url`` (``[marketdata] url``) becomes alpaca-py's ``url_override`` for both,
so tests and the paper server can stand in for Alpaca. alpaca-py runs with ``raw_data=True``: its own
model parses prices as floats and drops a message whose handler raises; we map the raw message
ourselves, exactly (``to_decimal`` goes through the float's shortest repr), and count what we refuse.

alpaca-py's ``run()`` calls ``asyncio.run``; inside the daemon's loop we await its ``_run_forever``
coroutine in tasks this source owns and cancels on ``close`` (it reconnects by itself, with backoff).
Alpaca stamps a bar with its **open** time; a minute bar closes 60 s later.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from autoquant.domain.bars import Bar
from autoquant.domain.values import to_decimal

MINUTE = timedelta(seconds=60)


def _timestamp(value: Any) -> datetime:
    if hasattr(value, "to_datetime"):  # msgpack.Timestamp, as the websocket delivers it
        value = value.to_datetime()
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise ValueError(f"bar timestamp {value!r} is not a time")
    if value.tzinfo is None:
        raise ValueError(f"bar timestamp {value!r} has no timezone")
    return value.astimezone(UTC)


def bar_from_alpaca(raw: Mapping[str, Any], *, length: timedelta = MINUTE, source: str = "alpaca") -> Bar:
    """Our ``Bar`` from one raw Alpaca bar message (``{"T": "b", "S", "o", "h", "l", "c", "v", "t"}``).

    Raises ValueError (pydantic's ValidationError included) when the message is not a valid bar.
    """
    open_time = _timestamp(raw["t"])
    return Bar(
        symbol=raw["S"],
        open_time=open_time,
        close_time=open_time + length,
        open=to_decimal(raw["o"]),
        high=to_decimal(raw["h"]),
        low=to_decimal(raw["l"]),
        close=to_decimal(raw["c"]),
        volume=to_decimal(raw["v"]),
        source=source,
    )


class AlpacaBars:
    """A ``BarSource`` over alpaca-py's data streams. Nothing touches the network until iterated."""

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        key_id: str,
        secret_key: str,
        url: str | None = None,
        feed: str = "iex",
        queue_size: int = 10_000,
    ) -> None:
        self._stocks = [s for s in symbols if "/" not in s]
        self._crypto = [s for s in symbols if "/" in s]
        self._key_id = key_id
        self._secret_key = secret_key
        self._url = url
        self._feed = feed
        self._queue: asyncio.Queue[Bar] = asyncio.Queue(maxsize=queue_size)
        self._streams: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []
        #: Raw messages that did not map to a valid bar, and the last reason.
        self.refused = 0
        self.last_refusal = ""

    async def _on_bar(self, raw: Any) -> None:
        try:
            if not isinstance(raw, Mapping):
                raise ValueError(f"expected a raw bar message, got {type(raw).__name__}")
            bar = bar_from_alpaca(raw)
        except (KeyError, ValueError) as error:
            self.refused += 1
            self.last_refusal = f"{type(error).__name__}: {error}"
            return
        await self._queue.put(bar)

    def _start(self) -> None:
        from alpaca.data.enums import DataFeed
        from alpaca.data.live.crypto import CryptoDataStream
        from alpaca.data.live.stock import StockDataStream

        if self._stocks:
            stock = StockDataStream(
                self._key_id,
                self._secret_key,
                raw_data=True,
                feed=DataFeed(self._feed),
                url_override=self._url,
            )
            stock.subscribe_bars(self._on_bar, *self._stocks)
            self._streams.append(stock)
        if self._crypto:
            crypto = CryptoDataStream(self._key_id, self._secret_key, raw_data=True, url_override=self._url)
            crypto.subscribe_bars(self._on_bar, *self._crypto)
            self._streams.append(crypto)
        # Owned here and cancelled in close(): alpaca-py exposes no structured way to run a stream.
        self._tasks = [asyncio.create_task(stream._run_forever()) for stream in self._streams]

    async def __aiter__(self) -> AsyncIterator[Bar]:
        if not self._tasks:
            self._start()
        try:
            while True:
                yield await self._queue.get()
        finally:
            await self.close()

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        streams, self._streams = self._streams, []
        for stream in streams:
            await stream.close()
