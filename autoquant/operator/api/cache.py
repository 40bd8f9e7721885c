"""A short-lived cache of read answers: within ``[api] cache_s`` every client asking the same GET gets
the same bytes, so fifty dashboards polling cost the ledger one read, not fifty. Writes, the websocket
and ``/health`` pass through; only authorized requests are answered from it."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autoquant.operator.api.guards import token_ok
from autoquant.operator.api.state import ApiState


def _cacheable(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    path = str(scope["path"])
    return path == "/" or path == "/metrics" or (path.startswith("/api/v1/") and "/backtest/" not in path)


class ReadCache:
    def __init__(self, app: ASGIApp, state: ApiState, ttl_s: float) -> None:
        self.app = app
        self.state = state
        self.ttl_s = ttl_s
        self.entries: dict[tuple[str, bytes], tuple[float, list[Message]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] != "GET":
            # A write through this API is seen by the next read (read-your-writes): forget the answers.
            self.entries.clear()
        if self.ttl_s <= 0 or not _cacheable(scope):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []}
        query = dict(
            part.split("=", 1) for part in scope.get("query_string", b"").decode().split("&") if "=" in part
        )
        if not token_ok(self.state, headers, query, str(scope["path"])):
            await self.app(scope, receive, send)  # the route answers 401 itself
            return
        key = (str(scope["path"]), scope.get("query_string", b""))
        now = time.monotonic()
        hit = self.entries.get(key)
        if hit is not None and hit[0] > now:
            for message in hit[1]:
                await send(message)
            return
        captured: list[Message] = []
        status: list[Any] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            captured.append(message)
            await send(message)

        await self.app(scope, receive, capture)
        if status and status[0] == 200:
            if len(self.entries) > 1000:
                self.entries = {k: v for k, v in self.entries.items() if v[0] > now}
            self.entries[key] = (now + self.ttl_s, captured)
