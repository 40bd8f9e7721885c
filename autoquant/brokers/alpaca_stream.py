"""The ``trade_updates`` subscription: one websocket connection per iterator, ended by a disconnect.

Why not alpaca-py's ``TradingStream`` run loop: it reconnects by itself and says nothing, so updates
sent while it was away are lost with no signal to reconcile; it logs and swallows an update whose
parsing or handler fails; it retries bad keys forever; it owns its own ``asyncio.run``; and it is
built on the deprecated ``websockets.legacy`` client. What we need is the opposite: one connection
per subscription that *ends* on disconnect, so the execution worker reconciles and subscribes
again, and an update we cannot read is surfaced, not dropped. So this speaks the same protocol as
``TradingStream`` (authenticate → authorized, listen → listening, then ``trade_updates`` frames, text
or binary JSON) with the maintained ``websockets`` client, and validates each frame itself through
``alpaca_mapping.parse_trade_update`` (the raw-data path).

How an ``AlpacaUpdateStream`` ends:

- the server closes or the connection drops after ``listening``: ``StopAsyncIteration`` (clean end),
  logged as ``trade_updates_disconnected`` (``AlpacaBroker.updates()`` logs the next subscription
  as ``trade_updates_reconnecting``; each confirmed one is ``trade_updates_connected``);
- bad keys: ``BrokerAuthError``; connection refused or not answered in time: ``BrokerTransient``;
- a frame that cannot be read into an ``OrderUpdate``: it is logged, then ``AlpacaPayloadError``
  (a ``BrokerError`` carrying the raw frame) is raised, after every update before it was delivered;
- a bug in this module: logged with its traceback and raised to the consumer, never a silent hang.

Informational events (``done_for_day``, …) are logged and skipped. The connection is opened as
soon as the stream is created (inside a running loop), so a caller can subscribe, await
``listening()``, reconcile, and then iterate without missing what happened in between.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from autoquant.brokers.alpaca_mapping import AlpacaPayloadError, parse_trade_update
from autoquant.brokers.settings import Secrets
from autoquant.domain.broker import OrderUpdate
from autoquant.domain.clock import Clock
from autoquant.errors import BrokerAuthError, BrokerError, BrokerTransient

log = structlog.get_logger("autoquant.alpaca")

_END = object()


class AlpacaUpdateStream:
    """An async iterator of ``OrderUpdate`` over one ``trade_updates`` connection."""

    def __init__(
        self,
        url: str,
        secrets: Secrets,
        clock: Clock,
        *,
        timeout_s: float,
        on_close: Callable[[AlpacaUpdateStream], None] | None = None,
    ) -> None:
        self.url = url
        self._on_close = on_close
        self._secrets = secrets
        self._clock = clock
        self._timeout_s = timeout_s
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._listening = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._finished = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="alpaca-trade-updates")

    async def listening(self) -> None:
        """Until the server confirmed the subscription (or the stream already ended)."""
        waiter = asyncio.ensure_future(self._listening.wait())
        try:
            await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    @property
    def confirmed(self) -> bool:
        """Whether the server confirmed the subscription (``listening``)."""
        return self._listening.is_set()

    def __aiter__(self) -> AlpacaUpdateStream:
        return self

    async def __anext__(self) -> OrderUpdate:
        if self._finished:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, OrderUpdate):
            return item
        if not self._finished:
            await self.aclose()
        if isinstance(item, BaseException):
            raise item
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._finished = True
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._queue.put_nowait(_END)  # wakes a consumer waiting in __anext__
        if self._on_close is not None:
            self._on_close(self)
            self._on_close = None

    async def __aenter__(self) -> AlpacaUpdateStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _run(self) -> None:
        try:
            await self._converse()
            log.warning("trade_updates_disconnected", url=self.url, reason="closed by the server")
            self._queue.put_nowait(_END)
        except (ConnectionClosed, OSError) as error:
            if self._listening.is_set():
                log.warning("trade_updates_disconnected", url=self.url, reason=str(error))
                self._queue.put_nowait(_END)
            else:
                self._queue.put_nowait(
                    BrokerTransient(f"trade_updates: cannot connect to {self.url}: {error}")
                )
        except (TimeoutError, InvalidHandshake, InvalidURI) as error:
            self._queue.put_nowait(BrokerTransient(f"trade_updates: cannot connect to {self.url}: {error}"))
        except BrokerError as error:
            self._queue.put_nowait(error)
        except Exception as error:  # a bug here must end the stream loudly, never leave it hanging
            log.exception("trade_updates_failed", url=self.url)
            self._queue.put_nowait(error)

    async def _converse(self) -> None:
        async with asyncio.timeout(self._timeout_s):
            ws = await connect(self.url, open_timeout=self._timeout_s, ping_interval=10, ping_timeout=30)
        async with ws:
            self._ws = ws
            async with asyncio.timeout(self._timeout_s):
                await ws.send(self._auth_message())
                reply = _decode(await ws.recv())
                status = (reply.get("data") or {}).get("status")
                if reply.get("stream") != "authorization" or status != "authorized":
                    raise BrokerAuthError(f"trade_updates: not authorized ({status or reply})")
                await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
                while True:
                    reply = _decode(await ws.recv())
                    if reply.get("stream") == "listening":
                        break
            if "trade_updates" not in (reply.get("data") or {}).get("streams", []):
                raise BrokerError(f"trade_updates: the server did not subscribe us ({reply})")
            self._listening.set()
            log.info("trade_updates_connected", url=self.url)
            async for frame in ws:
                self._deliver(frame)

    def _auth_message(self) -> str:
        data = {"key_id": self._secrets.key_id, "secret_key": self._secrets.secret_key}
        return json.dumps({"action": "authenticate", "data": data})

    def _deliver(self, frame: str | bytes) -> None:
        try:
            message = _decode(frame)
            if message.get("stream") != "trade_updates":
                return
            update = parse_trade_update(message, local_ts_ns=self._clock.now_ns())
        except AlpacaPayloadError as error:
            log.error("trade_update_unreadable", error=str(error), raw=repr(frame[:2000]))
            raise
        if update is None:
            log.info("trade_update_skipped", trade_event=message.get("data", {}).get("event"))
            return
        self._queue.put_nowait(update)


def _decode(frame: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(frame)
    except ValueError:
        raise AlpacaPayloadError("trade_updates: frame is not JSON", frame) from None
    if not isinstance(message, dict):
        raise AlpacaPayloadError("trade_updates: frame is not a JSON object", message)
    return message
