"""The ``trade_updates`` websocket, in the protocol alpaca-py's ``TradingStream`` speaks.

Client → server (JSON text): ``{"action": "authenticate", "data": {"key_id": …, "secret_key": …}}``
(Alpaca's older ``{"action": "auth", "key": …, "secret": …}`` is accepted too), then
``{"action": "listen", "data": {"streams": ["trade_updates"]}}``.
Server → client: ``{"stream": "authorization", "data": {"status": "authorized", …}}`` (or
``"unauthorized"``, then close), ``{"stream": "listening", "data": {"streams": [...]}}``, then one
``{"stream": "trade_updates", "data": {...}}`` per order update. Like Alpaca's trading stream, frames
are sent as **binary** JSON; alpaca-py (``json.loads``) and our adapter take either.

Updates are live only: nothing from before ``listen`` is replayed (reconnecting clients reconcile).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from autoquant.brokers.paper.alpaca_json import trade_update_json
from autoquant.brokers.paper.engine import PaperExchange
from autoquant.brokers.paper.faults import REORDER_HOLD_S, FaultInjector
from autoquant.brokers.settings import Secrets
from autoquant.domain.broker import OrderUpdate

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0


def _authorized(message: dict[str, Any], keys: Secrets) -> bool:
    data = message.get("data") if isinstance(message.get("data"), dict) else message
    assert isinstance(data, dict)
    key = data.get("key_id", data.get("key"))
    secret = data.get("secret_key", data.get("secret"))
    return key == keys.key_id and secret == keys.secret_key


def _frame(stream: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"stream": stream, "data": data}).encode()


async def _receive_json(ws: WebSocket) -> dict[str, Any] | None:
    try:
        text = await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_S)
        message = json.loads(text)
    except (TimeoutError, ValueError, KeyError, WebSocketDisconnect):
        return None
    return message if isinstance(message, dict) else None


async def serve_trade_updates(
    ws: WebSocket, exchange: PaperExchange, keys: Secrets, faults: FaultInjector
) -> None:
    """One client's session: authenticate, listen, then stream updates until either side leaves."""
    await ws.accept()
    message = await _receive_json(ws)
    if message is None or message.get("action") not in ("authenticate", "auth"):
        # Alpaca names the action it refused: a ``listen`` before authenticating is answered with
        # ``"action": "listen"``.
        action = message.get("action") if message is not None else None
        refused = action if isinstance(action, str) and action else "authenticate"
        await ws.send_bytes(_frame("authorization", {"status": "unauthorized", "action": refused}))
        await ws.close(code=1008)
        return
    if not _authorized(message, keys):
        await ws.send_bytes(_frame("authorization", {"status": "unauthorized", "action": "authenticate"}))
        await ws.close(code=1008)
        return
    await ws.send_bytes(_frame("authorization", {"status": "authorized", "action": "authenticate"}))
    while True:
        message = await _receive_json(ws)
        if message is None:
            await ws.close(code=1008)
            return
        if message.get("action") == "listen":
            break
    data = message.get("data") or {}
    streams = [s for s in data.get("streams", []) if s == "trade_updates"]
    queue = exchange.subscribe() if streams else None
    await ws.send_bytes(_frame("listening", {"streams": streams}))
    if queue is None:
        await ws.close()
        return
    disconnect_after = faults.settings.stream_disconnect_every_s or None
    reader = asyncio.create_task(_drain_client(ws))
    sender = asyncio.create_task(_send_updates(ws, exchange, queue, faults))
    try:
        await asyncio.wait({reader, sender}, timeout=disconnect_after, return_when=asyncio.FIRST_COMPLETED)
    finally:
        reader.cancel()
        sender.cancel()
        outcomes = await asyncio.gather(reader, sender, return_exceptions=True)
        exchange.unsubscribe(queue)
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            log.debug("trade_updates session ended: %r", outcome)
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await ws.close(code=1001 if disconnect_after else 1000)


async def _drain_client(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends, so its leaving is noticed."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _send_updates(
    ws: WebSocket, exchange: PaperExchange, queue: asyncio.Queue[OrderUpdate], faults: FaultInjector
) -> None:
    held: bytes | None = None
    while True:
        try:
            update = await asyncio.wait_for(queue.get(), REORDER_HOLD_S) if held else await queue.get()
        except TimeoutError:
            assert held is not None
            await ws.send_bytes(held)
            held = None
            continue
        order_id = update.order.broker_order_id
        frame = json.dumps(
            trade_update_json(
                update,
                position_qty=exchange.position_qty(update.order.symbol),
                links=exchange.links([order_id]).get(order_id),
            )
        ).encode()
        if held is None and faults.reorder_event():
            held = frame
            continue
        await ws.send_bytes(frame)
        if faults.duplicate_event():
            await ws.send_bytes(frame)
        if held is not None:
            await ws.send_bytes(held)
            held = None
