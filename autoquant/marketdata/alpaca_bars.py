"""Live bars from Alpaca's market-data websocket, over our own client for its protocol.

Why not alpaca-py's ``StockDataStream`` / ``CryptoDataStream``: their ``run()`` owns an
``asyncio.run``, so inside the daemon's loop the only way in was a private coroutine of theirs; they
reconnect without telling anyone, drop a message whose handler raises, and are built on the
deprecated ``websockets.legacy``. The protocol is small, so this module speaks it with the maintained
``websockets`` client, as alpaca-py does (msgpack frames, ``Content-Type: application/msgpack``):

- server ``[{"T": "success", "msg": "connected"}]``; client ``{"action": "auth", "key", "secret"}``
  → ``[{"T": "success", "msg": "authenticated"}]`` (or ``[{"T": "error", "code": 402, …}]``);
- client ``{"action": "subscribe", "bars": [...]}`` → ``[{"T": "subscription", "bars": [...], …}]``;
- then frames of messages, bars being ``{"T": "b", "S", "o", "h", "l", "c", "v", "t"}``.

Stocks and crypto (``BTC/USD``) are served at different paths, so a mixed symbol list opens two
connections, each run by a task this source owns and cancels on ``close``. Each connection
**reconnects** after any end (dropped, refused, auth failed, protocol error) with exponential
backoff and jitter, from ``reconnect_initial_s`` up to ``reconnect_max_s``, reset once a connection
is subscribed again; every disconnect and reconnect is logged (``market_data_disconnected``,
``market_data_reconnecting``, ``market_data_connected``). Bars missed while away are the freshness
tracker's and the reorder buffer's business, not this module's.

Bars are validated at the boundary: a message that is not a valid bar (missing field, high below
low, naive time) is refused, counted in ``refused`` and logged (``bar_refused``); a frame that is not
msgpack/JSON or not a list of messages is counted in ``bad_frames`` and logged. Neither ends the
connection. Prices arrive as msgpack floats and become exact decimals through the float's shortest
repr (``to_decimal``); a JSON text frame is read with exact decimals. Alpaca stamps a bar with its
**open** time; a bar closes ``bar_length`` (a minute on Alpaca) later.

``[marketdata] url`` (``url=``) names **where**, not which stream. ``stream_urls`` maps it:

- unset: Alpaca's own endpoints (``wss://stream.data.alpaca.markets/v2/{feed}`` and
  ``/v1beta3/crypto/us``);
- a base, e.g. ``ws://127.0.0.1:8765`` (a paper-server) or ``wss://proxy.example/alpaca``: stocks
  connect to ``{base}/v2/{feed}``, crypto to ``{base}/v1beta3/crypto/us``;
- one stream's full URL, e.g. ``ws://127.0.0.1:8765/v2/iex`` or ``…/v1beta3/crypto/us``: that path is
  taken off to find the base, and both URLs are built from it as above. A stock path naming another
  feed than ``[marketdata] feed`` is a ``ConfigError`` rather than a silent choice between the two.

``http``/``https`` are accepted for ``ws``/``wss``.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type stubs
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from autoquant.domain.bars import Bar
from autoquant.domain.values import to_decimal
from autoquant.errors import ConfigError

log = structlog.get_logger("autoquant.marketdata")

MINUTE = timedelta(seconds=60)
ALPACA_DATA = "wss://stream.data.alpaca.markets"
CRYPTO_PATH = "/v1beta3/crypto/us"
_STREAM_PATH = re.compile(r"/v2/(?P<feed>[a-z_]+)/?$|/v1beta3/crypto/[a-z]+/?$")
_SCHEMES = {"http://": "ws://", "https://": "wss://"}
#: Seconds to connect, and then to be authenticated and subscribed.
HANDSHAKE_TIMEOUT_S = 10.0
#: Websocket keepalive: a connection that stops answering pings is dropped (and reconnected).
PING_INTERVAL_S = 10.0
PING_TIMEOUT_S = 20.0


class StreamProtocolError(Exception):
    """The server answered the handshake with something else than the protocol says (or an error)."""


class StreamUrls(NamedTuple):
    """The stock and crypto stream URLs; ``None`` keeps Alpaca's own endpoint."""

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
    """A ``BarSource`` over Alpaca's market-data websocket. Nothing touches the network until iterated."""

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
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
    ) -> None:
        urls = stream_urls(url, feed)
        self._bar_length = bar_length
        stocks = [s for s in symbols if "/" not in s]
        crypto = [s for s in symbols if "/" in s]
        self._plan = [
            (urls.stocks or f"{ALPACA_DATA}/v2/{feed}", stocks),
            (urls.crypto or f"{ALPACA_DATA}{CRYPTO_PATH}", crypto),
        ]
        self._plan = [(where, wanted) for where, wanted in self._plan if wanted]
        self._key_id = key_id
        self._secret_key = secret_key
        self._reconnect_initial_s = reconnect_initial_s
        self._reconnect_max_s = reconnect_max_s
        self._handshake_timeout_s = handshake_timeout_s
        self._queue: asyncio.Queue[Bar] = asyncio.Queue(maxsize=queue_size)
        self._tasks: list[asyncio.Task[None]] = []
        #: Bar messages that did not map to a valid bar, and the last reason.
        self.refused = 0
        self.last_refusal = ""
        #: Frames that were not msgpack/JSON, or not a list of messages.
        self.bad_frames = 0
        #: Connections that reached the subscribed state, over the source's life (1 per stream
        #: when nothing ever dropped).
        self.connections = 0

    async def __aiter__(self) -> AsyncIterator[Bar]:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._keep_connected(where, wanted), name=f"alpaca-bars {where}")
                for where, wanted in self._plan
            ]
        try:
            while True:
                yield await self._queue.get()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop every connection and wait for its task. Safe to call twice."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.error("market_data_task_failed", error=repr(outcome))

    async def _keep_connected(self, url: str, symbols: list[str]) -> None:
        """Connect, stream, and after any end reconnect with backoff; forever (until cancelled)."""
        failures = 0
        while True:
            subscribed: list[bool] = []
            reason: str
            try:
                await self._stream(url, symbols, subscribed)
                reason = "closed by the server"
            except ConnectionClosed as error:
                reason = f"connection closed: {error}"
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as error:
                reason = f"cannot connect: {type(error).__name__}: {error}"
            except StreamProtocolError as error:
                reason = str(error)
            if subscribed:  # it worked for a while: start the backoff over
                failures = 0
            failures += 1
            delay = min(self._reconnect_max_s, self._reconnect_initial_s * 2 ** (failures - 1))
            delay *= 0.5 + random.random() / 2  # jitter, so two streams do not knock in step
            log.warning("market_data_disconnected", url=url, reason=reason)
            log.warning("market_data_reconnecting", url=url, attempt=failures, delay_s=round(delay, 3))
            await asyncio.sleep(delay)

    async def _stream(self, url: str, symbols: list[str], subscribed: list[bool]) -> None:
        """One connection: handshake (``subscribed`` gets a True once done), then bars until it ends."""
        async with asyncio.timeout(self._handshake_timeout_s):
            ws = await connect(
                url,
                additional_headers={"Content-Type": "application/msgpack"},
                open_timeout=self._handshake_timeout_s,
                ping_interval=PING_INTERVAL_S,
                ping_timeout=PING_TIMEOUT_S,
                max_queue=64,
            )
        async with ws:
            async with asyncio.timeout(self._handshake_timeout_s):
                await self._handshake(ws, symbols)
            subscribed.append(True)
            self.connections += 1
            log.info("market_data_connected", url=url, symbols=symbols, connection=self.connections)
            async for frame in ws:
                for message in self._messages(frame):
                    if message.get("T") == "b":
                        await self._on_bar(message)
                    elif message.get("T") == "error":
                        log.warning(
                            "market_data_error", url=url, code=message.get("code"), msg=message.get("msg")
                        )

    async def _handshake(self, ws: ClientConnection, symbols: list[str]) -> None:
        await self._expect(ws, "success", "connected")
        await ws.send(msgpack.packb({"action": "auth", "key": self._key_id, "secret": self._secret_key}))
        await self._expect(ws, "success", "authenticated")
        await ws.send(msgpack.packb({"action": "subscribe", "bars": symbols}))
        await self._expect(ws, "subscription", None)

    async def _expect(self, ws: ClientConnection, kind: str, msg: str | None) -> None:
        """Read control frames until the one the protocol says comes next; an error ends the session."""
        while True:
            for message in self._messages(await ws.recv()):
                if message.get("T") == "error":
                    raise StreamProtocolError(
                        f"the server refused: {message.get('code')} {message.get('msg')}"
                    )
                if message.get("T") == kind and (msg is None or message.get("msg") == msg):
                    return

    def _messages(self, frame: str | bytes) -> list[Mapping[str, Any]]:
        """A frame's messages; an undecodable frame, or one that is not a list of maps, counts as bad."""
        try:
            if isinstance(frame, bytes):
                decoded = msgpack.unpackb(frame)
            else:
                decoded = json.loads(frame, parse_float=Decimal)
        except (ValueError, msgpack.UnpackException) as error:
            return self._bad_frame(frame, f"undecodable: {type(error).__name__}")
        if not isinstance(decoded, list) or not all(isinstance(m, Mapping) for m in decoded):
            return self._bad_frame(frame, f"not a list of messages: {type(decoded).__name__}")
        return decoded

    def _bad_frame(self, frame: str | bytes, why: str) -> list[Mapping[str, Any]]:
        self.bad_frames += 1
        log.warning("market_data_frame_refused", reason=why, frame=repr(frame[:200]))
        return []

    async def _on_bar(self, raw: Any) -> None:
        try:
            if not isinstance(raw, Mapping):
                raise ValueError(f"expected a raw bar message, got {type(raw).__name__}")
            bar = bar_from_alpaca(raw, length=self._bar_length)
        except (KeyError, TypeError, ValueError) as error:
            self.refused += 1
            self.last_refusal = f"{type(error).__name__}: {error}"
            log.warning("bar_refused", reason=self.last_refusal, raw=repr(raw)[:200])
            return
        await self._queue.put(bar)
