"""The Alpaca REST transport's promises: a deadline on every call, 429s retried after the server's
hint, a submit that may have landed never resent, and a payload it cannot read a typed error naming
the field. Against the paper server's faults, or a scripted loopback HTTP server where the paper
server cannot misbehave that way."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from autoquant.brokers.alpaca import AlpacaBroker
from autoquant.brokers.alpaca_http import RetryPolicy, retry_hint_s
from autoquant.brokers.alpaca_mapping import AlpacaPayloadError
from autoquant.brokers.paper.alpaca_json import account_json, order_json, position_json
from autoquant.domain.broker import BrokerAccount, BrokerOrderState, BrokerPosition
from autoquant.domain.orders import OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce, from_ns
from autoquant.errors import BrokerAmbiguous, BrokerTransient
from autoquant.runtime.config import AlpacaBrokerSettings, FaultSettings
from tests.brokers.server_harness import TEST_KEYS, alpaca_broker_for, paper_server
from tests.brokers.test_server_faults import working_order

RETRYING = "broker_call_retrying"


def retries(logs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == RETRYING]


async def test_a_read_gives_up_at_timeout_s_against_a_slow_server(tmp_path: Path) -> None:
    """Against a server answering after 3 s, a read with timeout_s = 0.3 fails (BrokerTransient) at ~0.3 s."""
    faults = FaultSettings(slow_response=1.0, slow_response_s=3.0)
    async with paper_server(tmp_path, faults=faults) as server:
        broker = alpaca_broker_for(server, timeout_s=0.3, retry=RetryPolicy(attempts=1))
        try:
            started = time.monotonic()
            with pytest.raises(BrokerTransient, match=r"no answer within 0\.3s"):
                await broker.account()
            elapsed = time.monotonic() - started
            assert 0.3 <= elapsed < 1.5, elapsed
        finally:
            await broker.close()


async def test_a_submit_gives_up_at_timeout_s_and_is_not_resent(tmp_path: Path) -> None:
    """A submit against a slow server raises BrokerAmbiguous after one timeout_s, without a retry."""
    faults = FaultSettings(slow_response=1.0, slow_response_s=3.0)
    async with paper_server(tmp_path, faults=faults) as server:
        broker = alpaca_broker_for(server, timeout_s=0.3)  # FAST_RETRY: 8 attempts allowed
        try:
            started = time.monotonic()
            with capture_logs() as logs, pytest.raises(BrokerAmbiguous):
                await broker.submit(working_order("slow-submit"))
            assert time.monotonic() - started < 1.5
            assert retries(logs) == []
        finally:
            await broker.close()


async def test_a_429_is_retried_after_the_servers_retry_after(tmp_path: Path) -> None:
    """Reads through a 50% 429 burst succeed; every retry after a 429 waited at least its Retry-After."""
    faults = FaultSettings(rate_limit_429=0.5)
    async with paper_server(tmp_path, faults=faults, retry_after_s=0.15) as server:
        policy = RetryPolicy(attempts=10, initial_s=0.001, max_s=0.002, max_retry_after_s=1.0)
        broker = alpaca_broker_for(server, retry=policy)
        try:
            started = time.monotonic()
            with capture_logs() as logs:
                for _ in range(4):
                    assert (await broker.account()).cash == server.config.paper.starting_cash
            elapsed = time.monotonic() - started
        finally:
            await broker.close()
    seen = retries(logs)
    assert seen, "the seeded burst refused at least one call"
    assert all(entry["status"] == 429 and entry["retry_after_s"] == pytest.approx(0.15) for entry in seen)
    assert all(entry["wait_s"] >= 0.15 for entry in seen)
    assert elapsed >= 0.15 * len(seen)


async def test_a_submit_refused_with_429_is_retried_and_lands_once(tmp_path: Path) -> None:
    """A 429 means the order was not taken, so the submit is retried until accepted: exactly one order."""
    faults = FaultSettings(rate_limit_429=0.5)
    async with paper_server(tmp_path, faults=faults, retry_after_s=0.01) as server:
        broker = alpaca_broker_for(server)
        try:
            with capture_logs() as logs:
                states = [await broker.submit(working_order(f"rl-{n}")) for n in range(4)]
            assert [s.client_order_id for s in states] == [f"rl-{n}" for n in range(4)]
            assert retries(logs), "the seeded burst refused at least one submit"
            every = server.exchange.list_orders(status="all", limit=100)
            assert sorted(o.client_order_id for o in every) == [f"rl-{n}" for n in range(4)]
        finally:
            await broker.close()


async def test_a_submit_whose_response_is_dropped_is_ambiguous_and_not_retried(tmp_path: Path) -> None:
    """The venue takes the order and drops the answer: BrokerAmbiguous at once, no retry logged, one order
    at the venue (a resent POST would have been answered 422 duplicate, not ambiguous)."""
    async with paper_server(tmp_path, faults=FaultSettings(drop_response_after_accept=1.0)) as server:
        broker = alpaca_broker_for(server)
        try:
            with capture_logs() as logs, pytest.raises(BrokerAmbiguous, match="connection lost"):
                await broker.submit(working_order("dropped"))
            assert retries(logs) == []
            assert [o.client_order_id for o in server.exchange.list_orders(status="all")] == ["dropped"]
        finally:
            await broker.close()


async def test_a_submit_answered_with_5xx_is_ambiguous_and_not_retried(tmp_path: Path) -> None:
    """A 503 to a submit may follow acceptance (at Alpaca): BrokerAmbiguous, never resent here."""
    async with paper_server(tmp_path, faults=FaultSettings(error_5xx=1.0)) as server:
        broker = alpaca_broker_for(server)
        try:
            with capture_logs() as logs, pytest.raises(BrokerAmbiguous) as raised:
                await broker.submit(working_order("five"))
            assert raised.value.status == 503
            assert retries(logs) == []
        finally:
            await broker.close()


@asynccontextmanager
async def scripted_http(answers: Sequence[tuple[int, dict[str, str], bytes]]) -> AsyncIterator[str]:
    """A real HTTP/1.1 server on loopback answering each request with the next (status, headers, body);
    the last answer repeats. Yields its base URL."""
    remaining = list(answers)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length:\s*(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                status, headers, body = remaining.pop(0) if len(remaining) > 1 else remaining[0]
                lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
                lines += [f"{name}: {value}" for name, value in headers.items()]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


JSON = {"Content-Type": "application/json"}


def broker_at(url: str, retry: RetryPolicy | None = None) -> AlpacaBroker:
    return AlpacaBroker(
        AlpacaBrokerSettings(url=url, timeout_s=2.0),
        TEST_KEYS,
        retry=retry or RetryPolicy(attempts=3, initial_s=0.001, max_s=0.002),
    )


def an_order() -> dict[str, Any]:
    state = BrokerOrderState(
        broker_order_id="b-1",
        client_order_id="c-1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(2),
        order_type=OrderType.LIMIT,
        limit_price=Decimal("150"),
        time_in_force=TimeInForce.GTC,
        status=OrderStatus.ACCEPTED,
        created_ns=1_700_000_000_000_000_000,
        updated_ns=1_700_000_000_000_000_000,
    )
    return order_json(state)


def a_position() -> dict[str, Any]:
    return position_json(BrokerPosition(symbol="AAPL", qty=Decimal(5), avg_entry_price=Decimal(100)), None)


def an_account(cash: Decimal = Decimal(1)) -> dict[str, Any]:
    account = BrokerAccount(cash=cash, equity=cash, buying_power=cash)
    return account_json(account, long_value=Decimal(0), short_value=Decimal(0))


def without(payload: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != name}


@pytest.mark.parametrize(
    ("call", "payload", "field"),
    [
        ("positions", [without(a_position(), "avg_entry_price")], "avg_entry_price"),
        ("account", {**an_account(), "cash": "lots"}, "cash"),
        ("get_by_client_order_id", {**an_order(), "qty": "-2"}, "qty"),
        ("get_by_client_order_id", {**an_order(), "side": "Buy"}, "side"),
        ("list_orders", {"orders": []}, "orders"),
        ("list_orders", [an_order(), "not an order"], "orders[1]"),
    ],
    ids=["position-no-price", "account-cash", "order-qty", "order-side", "orders-not-a-list", "orders-item"],
)
async def test_a_malformed_payload_is_a_typed_error_naming_the_field(
    call: str, payload: Any, field: str
) -> None:
    """An answer that does not validate raises AlpacaPayloadError naming the field, with the raw payload."""
    async with scripted_http([(200, JSON, json.dumps(payload).encode())]) as url:
        broker = broker_at(url)
        try:
            calls: dict[str, Callable[[], Awaitable[object]]] = {
                "positions": broker.positions,
                "account": broker.account,
                "list_orders": broker.list_orders,
                "get_by_client_order_id": lambda: broker.get_by_client_order_id("c-1"),
            }
            with pytest.raises(AlpacaPayloadError) as raised:
                await calls[call]()
        finally:
            await broker.close()
    assert field in str(raised.value)
    assert raised.value.raw is not None


async def test_a_submit_answered_with_a_malformed_order_is_ambiguous() -> None:
    """A 200 to a submit whose order cannot be read may still be an accepted order: BrokerAmbiguous."""
    bad = {**an_order(), "created_at": "yesterday"}
    async with scripted_http([(200, JSON, json.dumps(bad).encode())]) as url:
        broker = broker_at(url)
        try:
            with pytest.raises(BrokerAmbiguous, match="created_at"):
                await broker.submit(working_order("c-1"))
        finally:
            await broker.close()


async def test_a_body_that_is_not_json_is_a_typed_error() -> None:
    """A 200 whose body is not JSON is an AlpacaPayloadError for a read (not a crash, not retried)."""
    async with scripted_http([(200, {}, b"<html>proxy</html>")]) as url:
        broker = broker_at(url)
        try:
            with pytest.raises(AlpacaPayloadError, match="not JSON"):
                await broker.account()
        finally:
            await broker.close()


async def test_a_429_with_x_ratelimit_reset_waits_until_the_reset() -> None:
    """Alpaca's X-RateLimit-Reset (epoch seconds) is honoured: the retry waits until then, then succeeds."""
    reset = time.time() + 1.0  # far enough ahead that a loaded machine still answers the 429 before it
    body = b'{"code": 42910000, "message": "slow down"}'
    refused = (429, {**JSON, "X-RateLimit-Reset": f"{reset:.3f}"}, body)
    account = json.dumps(an_account(Decimal(7))).encode()
    async with scripted_http([refused, (200, JSON, account)]) as url:
        broker = broker_at(url, RetryPolicy(attempts=3, initial_s=0.001, max_s=0.002, max_retry_after_s=2))
        try:
            with capture_logs() as logs:
                assert (await broker.account()).cash == Decimal(7)
            finished = time.time()
        finally:
            await broker.close()
    [retry] = retries(logs)
    assert retry["status"] == 429 and retry["wait_s"] > 0
    assert finished >= reset - 0.05  # it waited until the reset, not a backoff step (max 2 ms)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after": format_datetime(from_ns(10_000_000_000_000), usegmt=True)}, 3.0),
        ({"x-ratelimit-reset": "10004"}, 7.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_the_rate_limit_hint_is_read_from_either_header(
    headers: dict[str, str], expected: float | None
) -> None:
    """Retry-After in seconds or as an HTTP date, else X-RateLimit-Reset; neither gives no hint."""
    assert retry_hint_s(headers, now_ns=9_997_000_000_000) == expected
