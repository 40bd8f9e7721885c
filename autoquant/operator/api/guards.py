"""Who may ask and how much: the bearer token, the request body's size, the write rate."""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import HTTPException, Request, WebSocket
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autoquant.operator.api.models import SCHEMA_VERSION
from autoquant.operator.api.state import ApiState

#: Where a token may come as ``?token=`` (a browser cannot set a header on a page load or a websocket).
QUERY_TOKEN_PATHS = ("/", "/api/v1/events")


def _presented(headers: Any, query: Any, path: str) -> str | None:
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None
    if path in QUERY_TOKEN_PATHS:
        value = query.get("token")
        return str(value) if value is not None else None
    return None


def token_ok(state: ApiState, headers: Any, query: Any, path: str) -> bool:
    given = _presented(headers, query, path)
    return given is not None and hmac.compare_digest(given.encode(), state.token.encode())


def require_token(request: Request) -> None:
    """Dependency of every route but ``/health``: 401 without the right bearer token."""
    state: ApiState = request.app.state.api
    if not token_ok(state, request.headers, request.query_params, request.url.path):
        raise HTTPException(
            status_code=401,
            detail="missing or wrong token: send `Authorization: Bearer <token>` "
            f"(the token is in ${state.config.api.token_env} of the daemon's environment)",
            headers={"WWW-Authenticate": "Bearer"},
        )


def websocket_authorized(websocket: WebSocket) -> bool:
    state: ApiState = websocket.app.state.api
    return token_ok(state, websocket.headers, websocket.query_params, websocket.url.path)


def limit_writes(request: Request) -> None:
    """Dependency of every write: 429 past ``[api] writes_per_minute`` for this client."""
    state: ApiState = request.app.state.api
    client = request.client.host if request.client else "unknown"
    if not state.limiter.allow(client):
        raise HTTPException(
            status_code=429,
            detail=f"more than {state.config.api.writes_per_minute} writes in a minute: wait and retry",
            headers={"Retry-After": "60"},
        )


class BodyLimit:
    """Refuses a request body over ``max_bytes`` with 413, whether it declares its length or streams."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0

        async def counted() -> Message:
            # A body without a declared length is counted as it streams; past the limit the route
            # sees the client gone and answers nothing.
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "error": f"request body over {self.max_bytes} bytes: send less",
                "field": None,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
