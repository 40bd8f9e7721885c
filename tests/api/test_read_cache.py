"""The API's read cache: fifty clients asking one answer cost one read, stale by at most ``cache_s``,
and a write is seen by the next read."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from starlette.types import Receive, Scope, Send

from autoquant.operator.api.cache import ReadCache
from autoquant.operator.api.state import ApiState
from autoquant.runtime.config import Config, LedgerSettings

TOKEN = "cache-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class CountingApp:
    """An ASGI app that answers every request with its running count, held until ``release`` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        self.entered.set()
        answer = str(self.calls).encode()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})


def cached(tmp_path: Path, ttl_s: float) -> tuple[CountingApp, httpx.AsyncClient]:
    inner = CountingApp()
    state = ApiState(Config(ledger=LedgerSettings(path=tmp_path / "ledger.db")), TOKEN)
    app = ReadCache(inner, state, ttl_s)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", headers=AUTH)
    return inner, client


async def test_fifty_concurrent_misses_read_once(tmp_path: Path) -> None:
    """Fifty GETs of one route arriving while its answer is being read all get that answer: one read."""
    inner, client = cached(tmp_path, ttl_s=0.5)
    async with client:
        asks = [asyncio.create_task(client.get("/api/v1/status")) for _ in range(50)]
        await asyncio.wait_for(inner.entered.wait(), 5)
        inner.release.set()
        answers = await asyncio.gather(*asks)
    assert inner.calls == 1
    assert {answer.text for answer in answers} == {"1"}


async def test_an_answer_expires_after_cache_s(tmp_path: Path) -> None:
    """Within cache_s the same bytes are served; after it the route is read again."""
    inner, client = cached(tmp_path, ttl_s=0.05)
    inner.release.set()
    async with client:
        assert (await client.get("/api/v1/orders", params={"open": "true"})).text == "1"
        assert (await client.get("/api/v1/orders", params={"open": "true"})).text == "1"
        await asyncio.sleep(0.06)  # the cache's own time-to-live, the behaviour under test
        assert (await client.get("/api/v1/orders", params={"open": "true"})).text == "2"


async def test_a_write_during_a_read_is_not_hidden_by_it(tmp_path: Path) -> None:
    """A read that started before a write is not cached past it: the next read sees the write."""
    inner, client = cached(tmp_path, ttl_s=10)
    async with client:
        first = asyncio.create_task(client.get("/api/v1/status"))
        await asyncio.wait_for(inner.entered.wait(), 5)
        inner.release.set()
        await client.post("/api/v1/pause", json={})
        assert (await first).text == "1"
        assert (await client.get("/api/v1/status")).text == "3"


async def test_an_unauthorized_read_is_never_served_from_the_cache(tmp_path: Path) -> None:
    """Without the token the request reaches the route (which answers 401), even when an answer is cached."""
    inner, client = cached(tmp_path, ttl_s=10)
    inner.release.set()
    async with client:
        await client.get("/api/v1/status")
        await client.get("/api/v1/status", headers={"Authorization": "Bearer wrong"})
    assert inner.calls == 2
