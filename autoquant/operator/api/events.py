"""``ws /api/v1/events``: the ledger's events as they are committed, each with ``type`` and its global
journal ``seq``. A client that reconnects with ``?after=SEQ`` is first sent everything after SEQ from the
ledger (backfill), then new events as they land, so it misses nothing and sees nothing twice."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from autoquant.ledger import LedgerEvent
from autoquant.operator.api.guards import websocket_authorized
from autoquant.operator.api.models import LedgerEventOut
from autoquant.operator.api.state import ApiState
from autoquant.operator.inspection import iso

router = APIRouter()

#: Journal kind -> the event type clients see (kinds not listed are not streamed).
EVENT_TYPES = {
    "decision": "decision",
    "order_reserved": "order",
    "order_event": "order",
    "fill": "fill",
    "incident": "incident",
    "incident_resolved": "incident_resolved",
    "control": "control",
}
#: How often a connected client's stream looks for new events (one indexed read).
POLL_S = 0.2
BATCH = 500


def event_out(event: LedgerEvent) -> LedgerEventOut | None:
    kind = EVENT_TYPES.get(event.kind)
    if kind is None:
        return None
    data: dict[str, Any] = {k: v for k, v in event.fields.items() if k != "seq"}
    if event.kind == "order_reserved":
        data["status_after"] = "reserved"
    return LedgerEventOut(type=kind, seq=event.seq, time=iso(event.local_ts_ns), data=data)


@router.websocket("/api/v1/events")
async def events(websocket: WebSocket) -> None:
    if not websocket_authorized(websocket):
        await websocket.close(code=4401, reason="missing or wrong token: ?token= or Authorization: Bearer")
        return
    state: ApiState = websocket.app.state.api
    after_text = websocket.query_params.get("after")
    await websocket.accept()
    try:
        reader = await state.reader()
        cursor = await reader.last_seq() if after_text is None else int(after_text)
        if cursor < 0:
            raise ValueError
    except ValueError:
        await websocket.close(code=4422, reason="after must be a ledger sequence number (an integer >= 0)")
        return
    except Exception as error:  # the ledger is not there yet: say why, close
        await websocket.close(code=4503, reason=str(error)[:120])
        return
    try:
        while True:
            events = await reader.events_after(cursor, limit=BATCH)
            for event in events:
                out = event_out(event)
                if out is not None:
                    await websocket.send_text(out.model_dump_json())
                cursor = event.seq
            if len(events) < BATCH:
                await asyncio.sleep(POLL_S)  # a polling period, not a wait for something to happen
    except WebSocketDisconnect:
        return
