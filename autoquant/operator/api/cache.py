"""A short-lived cache of read answers: within ``[api] cache_s`` every client asking the same GET gets
the same bytes, so fifty dashboards polling cost the ledger one read, not fifty. A miss is computed
once: requests for the same answer that arrive while it is being read wait for it instead of reading
the ledger again (fifty clients arriving together after an answer expired would otherwise be fifty
reads, each holding a WAL snapshot the daemon's checkpoint must wait out). Writes, the websocket and
``/health`` pass through; only authorized requests are answered from it."""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autoquant.operator.api.guards import token_ok
from autoquant.operator.api.state import ApiState

Key = tuple[str, bytes]


def _cacheable(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    path = str(scope["path"])
    return path == "/" or path == "/metrics" or (path.startswith("/api/v1/") and "/backtest/" not in path)


def _authorized(state: ApiState, scope: Scope) -> bool:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []}
    query = dict(
        part.split("=", 1) for part in scope.get("query_string", b"").decode().split("&") if "=" in part
    )
    return token_ok(state, headers, query, str(scope["path"]))


class ReadCache:
    def __init__(self, app: ASGIApp, state: ApiState, ttl_s: float) -> None:
        self.app = app
        self.state = state
        self.ttl_s = ttl_s
        self.entries: dict[Key, tuple[float, list[Message]]] = {}
        #: Answers being computed: the messages of a 200, or None (not shareable: each asks itself).
        self.pending: dict[Key, asyncio.Future[list[Message] | None]] = {}
        #: Bumped by every write: an answer read before it is not kept after it.
        self.generation = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] != "GET":
            # A write through this API is seen by the next read (read-your-writes): forget the answers.
            self.entries.clear()
            self.pending.clear()
            self.generation += 1
        if self.ttl_s <= 0 or not _cacheable(scope):
            await self.app(scope, receive, send)
            return
        if not _authorized(self.state, scope):
            await self.app(scope, receive, send)  # the route answers 401 itself
            return
        key = (str(scope["path"]), scope.get("query_string", b""))
        hit = self.entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            await _replay(hit[1], send)
            return
        computing = self.pending.get(key)
        if computing is not None:
            shared = await asyncio.shield(computing)
            if shared is not None:
                await _replay(shared, send)
                return
        await self._compute(key, scope, receive, send)

    async def _compute(self, key: Key, scope: Scope, receive: Receive, send: Send) -> None:
        done: asyncio.Future[list[Message] | None] = asyncio.get_running_loop().create_future()
        self.pending[key] = done
        generation = self.generation
        captured: list[Message] = []
        status: list[int] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            captured.append(message)
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            shareable = status == [200] and generation == self.generation
            done.set_result(captured if shareable else None)
            if self.pending.get(key) is done:
                del self.pending[key]
            if shareable:
                now = time.monotonic()
                if len(self.entries) > 1000:
                    self.entries = {k: v for k, v in self.entries.items() if v[0] > now}
                self.entries[key] = (now + self.ttl_s, captured)


async def _replay(messages: list[Message], send: Send) -> None:
    for message in messages:
        await send(message)
