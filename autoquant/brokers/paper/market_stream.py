"""Alpaca's real-time market-data websocket, bars only, served by the paper server.

Paths, as on ``stream.data.alpaca.markets``: ``/v2/iex`` and ``/v2/sip`` (stocks) and
``/v1beta3/crypto/us`` (crypto; symbols with a ``/`` such as ``BTC/USD``). A stock path never sends a
crypto bar and the crypto path never sends a stock bar, as on Alpaca, so a client mixing both needs
two connections.

The session, as alpaca-py's ``StockDataStream`` / ``CryptoDataStream`` speak it:

- server: ``[{"T": "success", "msg": "connected"}]`` on connect;
- client: ``{"action": "auth", "key": …, "secret": …}`` within ``auth_timeout_s`` (or the
  ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` headers) → ``[{"T": "success", "msg": "authenticated"}]``;
  wrong keys → ``[{"T": "error", "code": 402, "msg": "auth failed"}]`` and the connection is closed;
- client: ``{"action": "subscribe", "bars": ["AAPL"], …}`` (``"*"`` for every symbol; ``unsubscribe``
  removes) → ``[{"T": "subscription", "trades": [], "quotes": [], "bars": ["AAPL"], …}]`` listing every
  channel of the feed;
- server: ``[{"T": "b", "S", "o", "h", "l", "c", "v", "t", "n", "vw"}, …]``, one frame per publish, the
  bars of the symbols this client subscribed to. ``t`` is the bar's **open** time.

Errors keep Alpaca's codes: 400 invalid syntax, 401 not authenticated, 402 auth failed (closes), 403
already authenticated, 404 auth timeout (closes), 407 slow client (closes). Only bars carry data here;
the other channels are acknowledged and stay quiet. ``MarketDataHub.drop_connections()`` closes every
session (code 1012) as a restarting server would, so clients' reconnects can be tested.

Encoding follows Alpaca: with the ``Content-Type: application/msgpack`` request header (alpaca-py sends
it) frames are msgpack, ``t`` a msgpack Timestamp; otherwise JSON text, ``t`` an RFC-3339 string. The
client may send either. Prices and volume go on the wire as Alpaca sends them, msgpack/JSON numbers
(floats); our cent prices survive that exactly (the shortest float repr of a cent price is the price).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type stubs
from starlette.websockets import WebSocket, WebSocketDisconnect

from autoquant.brokers.settings import Secrets
from autoquant.domain.bars import Bar
from autoquant.domain.values import from_ns, to_ns

log = logging.getLogger(__name__)

Market = Literal["stocks", "crypto"]
STOCK_PATHS = ("/v2/iex", "/v2/sip")
CRYPTO_PATH = "/v1beta3/crypto/us"
STOCK_CHANNELS = (
    "trades",
    "quotes",
    "bars",
    "updatedBars",
    "dailyBars",
    "statuses",
    "lulds",
    "corrections",
    "cancelErrors",
)
CRYPTO_CHANNELS = ("trades", "quotes", "orderbooks", "bars", "updatedBars", "dailyBars")
AUTH_TIMEOUT_S = 10.0
#: Frames a session may have waiting before it is a slow client and is cut off.
OUTBOX_SIZE = 1_000
#: How long a closing session's writer gets to send its last word (an error) before the close.
FLUSH_TIMEOUT_S = 1.0
VWAP_QUANTUM = Decimal("0.0001")

ERRORS = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    407: "slow client",
}
#: After these the server closes the connection.
FATAL = frozenset({402, 404, 407})


def market_of(symbol: str) -> Market:
    """Crypto pairs carry a ``/`` (``BTC/USD``); everything else is a stock."""
    return "crypto" if "/" in symbol else "stocks"


def bar_message(bar: Bar) -> dict[str, Any]:
    """Alpaca's bar message for ``bar`` (``t`` as nanoseconds; the session encodes it for its client).

    Alpaca sends no count or VWAP we could know, so ``n`` is derived from volume and ``vw`` is the
    typical price; both are there because real messages carry them.
    """
    volume: int | float = (
        int(bar.volume) if bar.volume == bar.volume.to_integral_value() else float(bar.volume)
    )
    typical = ((bar.high + bar.low + bar.close) / 3).quantize(VWAP_QUANTUM)
    return {
        "T": "b",
        "S": bar.symbol,
        "o": float(bar.open),
        "h": float(bar.high),
        "l": float(bar.low),
        "c": float(bar.close),
        "v": volume,
        "t": to_ns(bar.open_time),
        "n": max(1, int(bar.volume) // 100),
        "vw": float(typical),
    }


def error_message(code: int) -> dict[str, Any]:
    return {"T": "error", "code": code, "msg": ERRORS[code]}


@dataclass(eq=False)  # sessions are identities (kept in a set), not values
class _Session:
    market: Market
    msgpack: bool
    channels: dict[str, set[str]]
    #: Frames for the writer; ``None`` tells it to stop once what is before it has been sent.
    outbox: asyncio.Queue[bytes | str | None] = field(default_factory=lambda: asyncio.Queue(OUTBOX_SIZE))
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)
    #: Fault injection: the server ends this session as if it had restarted.
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    authenticated: bool = False
    #: The session ends with an error (402, 404, 407): closed with 1008 rather than 1000.
    refused: bool = False

    def encode(self, messages: list[dict[str, Any]]) -> bytes | str:
        if self.msgpack:
            wire = [
                {**m, "t": msgpack.Timestamp.from_unix_nano(m["t"])} if isinstance(m.get("t"), int) else m
                for m in messages
            ]
            return bytes(msgpack.packb(wire, datetime=False))
        return json.dumps(
            [{**m, "t": _rfc3339(m["t"])} if isinstance(m.get("t"), int) else m for m in messages]
        )

    def offer(self, frame: bytes | str) -> None:
        """Queue ``frame``; a client that cannot keep up is marked, and cut off by its session."""
        try:
            self.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed.set()

    def say(self, *messages: dict[str, Any]) -> None:
        self.offer(self.encode(list(messages)))

    def wants(self, symbol: str) -> bool:
        bars = self.channels["bars"]
        return self.authenticated and market_of(symbol) == self.market and (symbol in bars or "*" in bars)

    def subscription(self) -> dict[str, Any]:
        return {"T": "subscription", **{name: sorted(symbols) for name, symbols in self.channels.items()}}


def _rfc3339(ns: int) -> str:
    return from_ns(ns).isoformat().replace("+00:00", "Z")


class MarketDataHub:
    """Every open market-data session; ``publish`` fans bars out to the sessions subscribed to them."""

    def __init__(self, keys: Secrets, *, auth_timeout_s: float = AUTH_TIMEOUT_S) -> None:
        self._keys = keys
        #: Seconds a new connection has to authenticate (Alpaca gives 10); tests shorten it.
        self.auth_timeout_s = auth_timeout_s
        self._sessions: set[_Session] = set()
        #: Connections refused for bad keys (402) since start: an operator's first clue.
        self.auth_failures = 0

    def subscribers(self, symbol: str) -> int:
        """How many sessions would receive a bar of ``symbol`` now (tests wait on this)."""
        return sum(1 for session in self._sessions if session.wants(symbol))

    def publish(self, bars: Iterable[Bar]) -> None:
        """Send each session the bars of its symbols, in one frame. Never blocks."""
        messages = [bar_message(bar) for bar in bars]
        for session in list(self._sessions):
            mine = [m for m in messages if session.wants(m["S"])]
            if mine:
                session.say(*mine)

    def drop_connections(self) -> int:
        """Fault injection: close every session (code 1012, service restart); how many there were."""
        sessions = list(self._sessions)
        for session in sessions:
            session.dropped.set()
        return len(sessions)

    def inject_frame(self, frame: bytes | str) -> None:
        """Fault injection: send ``frame`` as it is to every authenticated session."""
        for session in list(self._sessions):
            if session.authenticated:
                session.offer(frame)

    async def serve(self, ws: WebSocket, market: Market) -> None:
        """One client's session, from the ``connected`` greeting until either side leaves."""
        await ws.accept()
        channels = STOCK_CHANNELS if market == "stocks" else CRYPTO_CHANNELS
        session = _Session(
            market=market,
            msgpack="msgpack" in ws.headers.get("content-type", ""),
            channels={name: set() for name in channels},
        )
        session.say({"T": "success", "msg": "connected"})
        self._sessions.add(session)
        key = ws.headers.get("apca-api-key-id")
        if key is not None:
            self._authenticate(session, key, ws.headers.get("apca-api-secret-key"))
        reader = asyncio.create_task(self._read(ws, session))
        writer = asyncio.create_task(_write(ws, session))
        overflow = asyncio.create_task(session.overflowed.wait())
        dropped = asyncio.create_task(session.dropped.wait())
        tasks = (reader, writer, overflow, dropped)
        close_code = 1000
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if dropped in done:
                close_code = 1012
            elif overflow in done:
                session.refused = True
                writer.cancel()
                await _send_now(ws, session, error_message(407))
            elif reader in done and not writer.done():
                # The reader's last word (an error, or nothing) goes out before the close.
                with contextlib.suppress(asyncio.QueueFull):
                    session.outbox.put_nowait(None)
                await asyncio.wait({writer}, timeout=FLUSH_TIMEOUT_S)
        finally:
            self._sessions.discard(session)
            for task in tasks:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                log.debug("market data session ended: %r", outcome)
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await ws.close(code=1008 if session.refused else close_code)

    def _authenticate(self, session: _Session, key: Any, secret: Any) -> bool:
        if session.authenticated:
            session.say(error_message(403))
            return True
        if key == self._keys.key_id and secret == self._keys.secret_key:
            session.authenticated = True
            session.say({"T": "success", "msg": "authenticated"})
            return True
        session.refused = True
        self.auth_failures += 1
        session.say(error_message(402))
        return False

    async def _read(self, ws: WebSocket, session: _Session) -> None:
        """Answer the client's actions; returns when the session must end."""
        if session.refused:  # bad keys in the headers: the 402 is queued, nothing more to read
            return
        loop = asyncio.get_running_loop()
        auth_deadline = loop.time() + self.auth_timeout_s
        while True:
            timeout = None if session.authenticated else max(0.0, auth_deadline - loop.time())
            try:
                received = await asyncio.wait_for(ws.receive(), timeout)
            except TimeoutError:
                session.refused = True
                session.say(error_message(404))
                return
            if received["type"] == "websocket.disconnect":
                return
            message = _decode(received)
            action = message.get("action") if message is not None else None
            if action == "auth":
                assert message is not None
                if not self._authenticate(session, message.get("key"), message.get("secret")):
                    return
            elif action in ("subscribe", "unsubscribe"):
                assert message is not None
                self._subscribe(session, message, add=action == "subscribe")
            else:
                session.say(error_message(400))

    @staticmethod
    def _subscribe(session: _Session, message: dict[str, Any], *, add: bool) -> None:
        if not session.authenticated:
            session.say(error_message(401))
            return
        changes: dict[str, list[str]] = {}
        for name in session.channels:
            symbols = message.get(name, [])
            if not isinstance(symbols, list) or not all(isinstance(s, str) and s for s in symbols):
                session.say(error_message(400))
                return
            changes[name] = symbols
        for name, symbols in changes.items():
            if add:
                session.channels[name].update(symbols)
            else:
                session.channels[name].difference_update(symbols)
        session.say(session.subscription())


def _decode(received: Mapping[str, Any]) -> dict[str, Any] | None:
    """A client frame: msgpack when binary, JSON when text; None when it is neither or not a map."""
    try:
        if received.get("bytes") is not None:
            message = msgpack.unpackb(received["bytes"])
        else:
            message = json.loads(received.get("text") or "")
    except (ValueError, msgpack.UnpackException):
        return None
    return message if isinstance(message, dict) else None


async def _write(ws: WebSocket, session: _Session) -> None:
    while (frame := await session.outbox.get()) is not None:
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_text(frame)


async def _send_now(ws: WebSocket, session: _Session, message: dict[str, Any]) -> None:
    frame = session.encode([message])
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect, TimeoutError):
        async with asyncio.timeout(1.0):
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_text(frame)
