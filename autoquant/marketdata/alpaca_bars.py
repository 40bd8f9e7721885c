"""Live minute bars from Alpaca's market-data websocket, through alpaca-py.

Stocks go through ``StockDataStream`` (feed ``iex`` or ``sip``), crypto symbols (``BTC/USD``) through
``CryptoDataStream``: Alpaca serves them at different paths, so a mixed symbol list opens two
connections. alpaca-py runs with ``raw_data=True``: its own model parses prices as floats and drops a
message whose handler raises; we map the raw message ourselves, exactly (``to_decimal`` goes through
the float's shortest repr), and count what we refuse.

``[marketdata] url`` (``url=``) names **where**, not which stream. ``stream_urls`` maps it:

- unset: Alpaca's own endpoints (``wss://stream.data.alpaca.markets/v2/{feed}`` and
  ``/v1beta3/crypto/us``);
- a base, e.g. ``ws://127.0.0.1:8765`` (a paper-server) or ``wss://proxy.example/alpaca``: stocks
  connect to ``{base}/v2/{feed}``, crypto to ``{base}/v1beta3/crypto/us``;
- one stream's full URL, e.g. ``ws://127.0.0.1:8765/v2/iex`` or ``…/v1beta3/crypto/us``: that path is
  taken off to find the base, and both URLs are built from it as above. A stock path naming another
  feed than ``[marketdata] feed`` is a ``ConfigError`` rather than a silent choice between the two.

``http``/``https`` are accepted for ``ws``/``wss``. Each resulting URL becomes alpaca-py's
``url_override``, which it uses as the full URL.

alpaca-py's ``run()`` calls ``asyncio.run``; inside the daemon's loop we await its ``_run_forever``
coroutine in tasks this source owns and cancels on ``close`` (it reconnects by itself, with backoff
from 1 s to 30 s, also after an auth failure). A frame it cannot decode is logged by alpaca-py and
skipped; the connection stays up. Alpaca stamps a bar with its **open** time; a bar closes
``bar_length`` (a minute on Alpaca) later.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from autoquant.domain.bars import Bar
from autoquant.domain.values import to_decimal
from autoquant.errors import ConfigError

MINUTE = timedelta(seconds=60)
CRYPTO_PATH = "/v1beta3/crypto/us"
_STREAM_PATH = re.compile(r"/v2/(?P<feed>[a-z_]+)/?$|/v1beta3/crypto/[a-z]+/?$")
#: close(): how many times a stream task is cancelled, and how long each time it is given to end.
CANCEL_ROUNDS = 10
CANCEL_WAIT_S = 0.5
_SCHEMES = {"http://": "ws://", "https://": "wss://"}


class StreamUrls(NamedTuple):
    """alpaca-py ``url_override`` values; ``None`` keeps Alpaca's own endpoint."""

    stocks: str | None
    crypto: str | None


def stream_urls(url: str | None, feed: str) -> StreamUrls:
    """The stock and crypto stream URLs for ``[marketdata] url`` (see the module docstring)."""
    if url is None:
        return StreamUrls(None, None)
    for http, ws in _SCHEMES.items():
        if url.startswith(http):
            url = ws + url.removeprefix(http)
    if not url.startswith(("ws://", "wss://")):
        raise ConfigError(f"marketdata.url {url!r} must start with ws://, wss://, http:// or https://")
    base = url.rstrip("/")
    named = _STREAM_PATH.search(base)
    if named is not None:
        if named["feed"] is not None and named["feed"] != feed:
            raise ConfigError(
                f"marketdata.url {url!r} names feed {named['feed']!r} but marketdata.feed is {feed!r}: "
                "give the base URL, or make them agree"
            )
        base = base[: named.start()]
    return StreamUrls(f"{base}/v2/{feed}", f"{base}{CRYPTO_PATH}")


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
        bar_length: timedelta = MINUTE,
    ) -> None:
        self._urls = stream_urls(url, feed)
        self._bar_length = bar_length
        self._stocks = [s for s in symbols if "/" not in s]
        self._crypto = [s for s in symbols if "/" in s]
        self._key_id = key_id
        self._secret_key = secret_key
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
            bar = bar_from_alpaca(raw, length=self._bar_length)
        except (KeyError, TypeError, ValueError) as error:
            self.refused += 1
            self.last_refusal = f"{type(error).__name__}: {error}"
            return
        await self._queue.put(bar)

    def _start(self) -> None:
        with warnings.catch_warnings():  # alpaca-py's data streams import the deprecated websockets.legacy
            warnings.filterwarnings("ignore", "websockets.legacy is deprecated", DeprecationWarning)
            from alpaca.data.enums import DataFeed
            from alpaca.data.live.crypto import CryptoDataStream
            from alpaca.data.live.stock import StockDataStream

        if self._stocks:
            stock = StockDataStream(
                self._key_id,
                self._secret_key,
                raw_data=True,
                feed=DataFeed(self._feed),
                url_override=self._urls.stocks,
            )
            stock.subscribe_bars(self._on_bar, *self._stocks)
            self._streams.append(stock)
        if self._crypto:
            crypto = CryptoDataStream(
                self._key_id, self._secret_key, raw_data=True, url_override=self._urls.crypto
            )
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
        """Stop both streams and wait for their tasks. Safe to call twice.

        A cancel alone is not enough: websockets' legacy ``close()``, which alpaca-py awaits after a
        failed connection, swallows ``CancelledError``, and the stream then sleeps a reconnect
        backoff of up to 30 s. ``stop_ws`` wakes that sleep and tells the loop to end; the cancel is
        repeated for the same reason.
        """
        tasks, self._tasks = self._tasks, []
        streams, self._streams = self._streams, []
        for stream in streams:
            await stream.stop_ws()
        pending = set(tasks)
        for _ in range(CANCEL_ROUNDS):
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=CANCEL_WAIT_S)
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the stream's own log already said what happened
        for stream in streams:
            await stream.close()
