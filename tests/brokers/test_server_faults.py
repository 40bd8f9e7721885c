"""Injected faults, seen through AlpacaBroker: ambiguous submits resolve by lookup to exactly one
order, retries stay bounded, stream duplicates and reorderings are all passed through with their
execution ids, and disconnects and bad frames end the update stream in the documented way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from websockets.asyncio.server import ServerConnection, serve

from autoquant.brokers.alpaca import AlpacaBroker
from autoquant.brokers.alpaca_http import RetryPolicy
from autoquant.brokers.alpaca_mapping import AlpacaPayloadError
from autoquant.brokers.alpaca_stream import AlpacaUpdateStream
from autoquant.brokers.paper.alpaca_json import trade_update_json
from autoquant.clocks import SystemClock
from autoquant.domain.broker import BrokerOrderState, OrderRequest, OrderUpdate
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce
from autoquant.errors import (
    BrokerAmbiguous,
    BrokerAuthError,
    BrokerTransient,
    DuplicateClientOrderId,
)
from autoquant.runtime.config import AlpacaBrokerSettings, FaultSettings
from tests.brokers.server_harness import TEST_KEYS, alpaca_broker_for, paper_server, wait_until


def working_order(coid: str) -> OrderRequest:
    return OrderRequest(
        client_order_id=coid,
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(1),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(1),
        time_in_force=TimeInForce.GTC,
    )


async def submit_until_known(broker: AlpacaBroker, request: OrderRequest) -> BrokerOrderState:
    """What the execution worker does: submit; on ambiguity look up; resubmit the same id if absent."""
    for _ in range(50):
        try:
            return await broker.submit(request)
        except (DuplicateClientOrderId, BrokerAmbiguous, BrokerTransient):
            pass  # sent before / outcome unknown / refused before acceptance: look it up
        try:
            found = await broker.get_by_client_order_id(request.client_order_id)
        except BrokerTransient:
            continue
        if found is not None:
            return found
    raise AssertionError("the order never became known")


async def test_dropped_response_after_accept_is_ambiguous_and_lookup_finds_one_order(tmp_path: Path) -> None:
    """With the response dropped after acceptance, submit raises BrokerAmbiguous and the order exists once."""
    faults = FaultSettings(drop_response_after_accept=1.0)
    async with paper_server(tmp_path, faults=faults) as server:
        broker = alpaca_broker_for(server)
        try:
            with pytest.raises(BrokerAmbiguous):
                await broker.submit(working_order("drop-1"))
            found = await broker.get_by_client_order_id("drop-1")
            assert found is not None
            assert found.status is OrderStatus.ACCEPTED
            assert [o.client_order_id for o in await broker.list_orders(open_only=False, since_ns=0)] == [
                "drop-1"
            ]
            with pytest.raises(DuplicateClientOrderId):
                await broker.submit(working_order("drop-1"))
        finally:
            await broker.close()


@pytest.mark.parametrize(
    "faults",
    [
        FaultSettings(rate_limit_429=0.6),
        FaultSettings(error_5xx=0.6),
        FaultSettings(rate_limit_429=0.3, error_5xx=0.3, drop_response_after_accept=0.5),
    ],
    ids=["429-burst", "5xx-burst", "mixed"],
)
async def test_bursts_of_refusals_end_with_exactly_one_order_per_client_id(
    tmp_path: Path, faults: FaultSettings
) -> None:
    """Through 429s, 5xxs and dropped answers, each client order id ends as exactly one order."""
    async with paper_server(tmp_path, faults=faults) as server:
        broker = alpaca_broker_for(server)
        try:
            requests = [working_order(f"burst-{n}") for n in range(8)]
            for request in requests:
                state = await submit_until_known(broker, request)
                assert state.client_order_id == request.client_order_id
            every = server.exchange.list_orders(status="all", limit=100)
            assert sorted(o.client_order_id for o in every) == sorted(r.client_order_id for r in requests)
        finally:
            await broker.close()


async def test_rate_limit_retries_are_bounded_and_honour_retry_after(tmp_path: Path) -> None:
    """A venue that always answers 429 makes reads fail with BrokerTransient after the bounded attempts."""
    async with paper_server(tmp_path, faults=FaultSettings(rate_limit_429=1.0), retry_after_s=0.05) as server:
        policy = RetryPolicy(attempts=3, initial_s=0.001, max_s=0.002, max_retry_after_s=1.0)
        broker = alpaca_broker_for(server, retry=policy)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(BrokerTransient) as refused:
                await broker.account()
            assert refused.value.status == 429
            assert refused.value.retry_after_s == pytest.approx(0.05)
            assert loop.time() - started >= 0.1  # two waits of at least the Retry-After
            with pytest.raises(BrokerTransient):
                await broker.submit(working_order("never"))
            assert server.exchange.list_orders(status="all") == []
        finally:
            await broker.close()


async def test_a_submit_that_times_out_is_ambiguous(tmp_path: Path) -> None:
    """A submit answered after timeout_s raises BrokerAmbiguous (not retried); reads become transient."""
    faults = FaultSettings(slow_response=1.0, slow_response_s=0.6)
    async with paper_server(tmp_path, faults=faults) as server:
        broker = alpaca_broker_for(
            server, timeout_s=0.2, retry=RetryPolicy(attempts=2, initial_s=0.001, max_s=0.002)
        )
        try:
            with pytest.raises(BrokerAmbiguous):
                await broker.submit(working_order("slow-1"))
            with pytest.raises(BrokerTransient):
                await broker.get_by_client_order_id("slow-1")

            async def accepted_late() -> bool:
                return server.exchange.get_by_client_order_id("slow-1") is not None

            await wait_until(accepted_late, "the slow submit to land at the venue")
        finally:
            await broker.close()


async def test_connection_refused_is_transient_even_for_submit(tmp_path: Path) -> None:
    """With nothing listening, a submit cannot have arrived: BrokerTransient, not BrokerAmbiguous."""
    async with paper_server(tmp_path) as server:
        url = server.url
    broker = AlpacaBroker(
        AlpacaBrokerSettings(url=url, timeout_s=1.0),
        TEST_KEYS,
        retry=RetryPolicy(attempts=2, initial_s=0.001, max_s=0.002),
    )
    try:
        with pytest.raises(BrokerTransient):
            await broker.submit(working_order("nowhere"))
    finally:
        await broker.close()


async def collect(stream: AlpacaUpdateStream, into: list[OrderUpdate]) -> None:
    async for update in stream:
        into.append(update)


async def fill_three_orders_and_collect(
    tmp_path: Path, faults: FaultSettings
) -> tuple[list[OrderUpdate], list[str]]:
    """Submit three market orders with a live subscription; the updates seen and the venue's executions."""
    async with paper_server(tmp_path, faults=faults) as server:
        server.exchange.set_price("AAPL", Decimal(100))
        broker = alpaca_broker_for(server)
        seen: list[OrderUpdate] = []
        stream = broker.updates()
        await stream.listening()
        collector = asyncio.create_task(collect(stream, seen))
        try:
            for n in range(3):
                await broker.submit(
                    OrderRequest(client_order_id=f"s-{n}", symbol="AAPL", side=Side.BUY, qty=Decimal(1))
                )

            async def all_filled() -> bool:
                fills = {u.fill.execution_id for u in seen if u.fill is not None}
                return len(fills) == 3

            await wait_until(all_filled, "three fills on the stream")
            executions = [f.execution_id for f in server.exchange.fills()]
        finally:
            await broker.close()
            await collector
    return seen, executions


async def test_duplicated_stream_events_are_all_passed_through(tmp_path: Path) -> None:
    """Every event arrives twice, each copy with its execution id: counting once is the ledger's job."""
    seen, executions = await fill_three_orders_and_collect(
        tmp_path, FaultSettings(duplicate_stream_event=1.0)
    )
    fill_ids = [u.fill.execution_id for u in seen if u.fill is not None]
    assert sorted(fill_ids) == sorted(executions * 2)
    accepted = [u.order.client_order_id for u in seen if u.kind is OrderEventKind.ACCEPTED]
    assert sorted(accepted) == sorted([f"s-{n}" for n in range(3)] * 2)


async def test_reordered_stream_events_are_all_delivered(tmp_path: Path) -> None:
    """With events held back and sent after the next one, every event still arrives exactly once."""
    seen, executions = await fill_three_orders_and_collect(tmp_path, FaultSettings(reorder_stream_events=1.0))
    assert sorted(u.fill.execution_id for u in seen if u.fill is not None) == sorted(executions)
    assert sorted(u.order.client_order_id for u in seen if u.kind is OrderEventKind.ACCEPTED) == [
        f"s-{n}" for n in range(3)
    ]


async def test_a_stream_disconnect_ends_updates_cleanly(tmp_path: Path) -> None:
    """When the server drops the trade_updates connection, the iterator ends with StopAsyncIteration."""
    async with paper_server(tmp_path, faults=FaultSettings(stream_disconnect_every_s=0.3)) as server:
        broker = alpaca_broker_for(server)
        try:
            received = [u async for u in broker.updates()]  # ends by itself after 0.3 s
            assert received == []
            assert broker.open_streams == ()
        finally:
            await broker.close()


async def test_trade_updates_disconnects_and_resubscriptions_are_logged(tmp_path: Path) -> None:
    """Each dropped trade_updates connection is logged, and every subscription after the first is
    logged as a reconnect, so an operator sees the gaps the reconciliation then closes."""
    async with paper_server(tmp_path, faults=FaultSettings(stream_disconnect_every_s=0.3)) as server:
        broker = alpaca_broker_for(server)
        try:
            with capture_logs() as logs:
                for _ in range(2):
                    assert [u async for u in broker.updates()] == []
        finally:
            await broker.close()
    events = [entry["event"] for entry in logs if entry["event"].startswith("trade_updates_")]
    assert events == [
        "trade_updates_connected",
        "trade_updates_disconnected",
        "trade_updates_reconnecting",
        "trade_updates_connected",
        "trade_updates_disconnected",
    ]
    assert all(entry["url"] == broker.stream_url for entry in logs if entry["event"].startswith("trade_"))


async def test_stream_with_wrong_keys_raises_auth_error(tmp_path: Path) -> None:
    """A trade_updates subscription with wrong keys ends with BrokerAuthError, not a silent retry loop."""
    async with paper_server(tmp_path) as server:
        broker = AlpacaBroker(
            AlpacaBrokerSettings(url=server.url, timeout_s=2),
            TEST_KEYS.model_copy(update={"key_id": "x"}),
        )
        try:
            with pytest.raises(BrokerAuthError):
                await anext(broker.updates())
        finally:
            await broker.close()


async def test_stream_to_nowhere_raises_transient(tmp_path: Path) -> None:
    """A subscription that cannot connect ends with BrokerTransient (retry later), not a hang."""
    async with paper_server(tmp_path) as server:
        url = server.stream_url
    stream = AlpacaUpdateStream(url, TEST_KEYS, SystemClock(), timeout_s=1)
    with pytest.raises(BrokerTransient):
        await anext(stream)


async def scripted_stream(frames: list[str | bytes]) -> AsyncIterator[str]:
    """A real websocket server that authorizes, confirms listen, then sends ``frames`` and waits."""

    async def session(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(json.dumps({"stream": "authorization", "data": {"status": "authorized"}}))
        await ws.recv()
        await ws.send(json.dumps({"stream": "listening", "data": {"streams": ["trade_updates"]}}))
        for frame in frames:
            await ws.send(frame)
        await ws.wait_closed()

    async with serve(session, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/stream"


def good_frame(kind: OrderEventKind) -> str:
    order = BrokerOrderState(
        broker_order_id="b-1",
        client_order_id="c-1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal(1),
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.DAY,
        status=OrderStatus.ACCEPTED,
        created_ns=1,
        updated_ns=2,
    )
    update = OrderUpdate(kind=kind, order=order, local_ts_ns=3)
    return json.dumps(trade_update_json(update, position_qty=Decimal(0)))


async def test_an_unreadable_update_is_surfaced_after_the_good_ones() -> None:
    """Updates before a bad frame are delivered, then the stream ends with AlpacaPayloadError."""
    bad = json.loads(good_frame(OrderEventKind.ACCEPTED))
    bad["data"]["event"] = "trade_bust"
    frames: list[str | bytes] = [
        good_frame(OrderEventKind.ACCEPTED),
        json.dumps({**bad, "data": {**bad["data"], "event": "done_for_day"}}),  # informational: skipped
        json.dumps(bad),
    ]
    async for url in scripted_stream(frames):
        stream = AlpacaUpdateStream(url, TEST_KEYS, SystemClock(), timeout_s=2)
        first = await anext(stream)
        assert first.kind is OrderEventKind.ACCEPTED
        with pytest.raises(AlpacaPayloadError) as unreadable:
            await anext(stream)
        assert "trade_bust" in str(unreadable.value)
        with pytest.raises(StopAsyncIteration):
            await anext(stream)


async def test_a_frame_that_is_not_json_is_surfaced() -> None:
    """A garbage frame ends the stream with AlpacaPayloadError carrying the frame."""
    async for url in scripted_stream([b"\x00garbage"]):
        stream = AlpacaUpdateStream(url, TEST_KEYS, SystemClock(), timeout_s=2)
        with pytest.raises(AlpacaPayloadError):
            await anext(stream)
