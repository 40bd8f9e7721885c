"""``AlpacaBroker``: the ``Broker`` port over alpaca-py's ``TradingClient`` and Alpaca's trade stream.

Pieces: ``alpaca_http`` makes the client safe (timeouts, no hidden retries, typed errors, our
tenacity retries), ``alpaca_mapping`` reads Alpaca's JSON into the domain, ``alpaca_stream`` owns the
``trade_updates`` websocket. Every blocking call runs in a thread (``asyncio.to_thread``).

What is retried (bounded, exponential backoff with jitter, Retry-After honoured): reads, cancels,
and a submit refused before acceptance (429, connection refused). A submit that timed out, got a
5xx, or lost its connection raises ``BrokerAmbiguous`` at once and is never resent here: the
execution worker resolves it with ``get_by_client_order_id`` and only then resubmits the same id.

Orders are sent with ``client.post("/orders", …)`` rather than ``submit_order(OrderRequest)``
because alpaca-py's request models hold quantities and prices as floats; we send exact decimal
strings, which Alpaca accepts.

``updates()`` returns a new ``AlpacaUpdateStream`` (one websocket): it ends with
``StopAsyncIteration`` when the connection drops, so the caller reconciles and calls ``updates()``
again; see ``alpaca_stream`` for the typed errors it can end with instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from autoquant.brokers.alpaca_http import RetryPolicy, call, make_client
from autoquant.brokers.alpaca_mapping import (
    AlpacaPayloadError,
    format_time_ns,
    parse_account,
    parse_fill_activity,
    parse_order,
    parse_position,
    parse_time_ns,
)
from autoquant.brokers.alpaca_stream import AlpacaUpdateStream
from autoquant.brokers.settings import BrokerSettings, Secrets
from autoquant.clocks import SystemClock
from autoquant.domain.broker import (
    BrokerAccount,
    BrokerOrderState,
    BrokerPosition,
    OrderRequest,
)
from autoquant.domain.clock import Clock
from autoquant.domain.fills import Fill
from autoquant.errors import BrokerAmbiguous, BrokerNotFound

PAPER_STREAM = "wss://paper-api.alpaca.markets/stream"
LIVE_STREAM = "wss://api.alpaca.markets/stream"
ORDERS_PAGE = 500
ACTIVITIES_PAGE = 100
#: Activities are asked for from this much before ``since_ns``, then filtered exactly here, so
#: whether Alpaca's ``after`` is inclusive or rounds the timestamp does not matter.
SINCE_MARGIN_NS = 1_000_000_000


def stream_url_for(settings: BrokerSettings) -> str:
    """``stream_url``, else ``url`` with the ws scheme and path ``/stream``, else Alpaca's own."""
    if settings.stream_url:
        return settings.stream_url
    if settings.url:
        parts = urlsplit(settings.url)
        scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, "/stream", "", ""))
    return PAPER_STREAM if settings.paper else LIVE_STREAM


class AlpacaBroker:
    """The ``Broker`` protocol for an Alpaca account (or the paper server, via ``[broker] url``)."""

    def __init__(
        self,
        settings: BrokerSettings,
        secrets: Secrets,
        *,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.stream_url = stream_url_for(settings)
        self._secrets = secrets
        self._retry = retry or RetryPolicy()
        self._clock: Clock = clock or SystemClock()
        self._client = make_client(settings, secrets)
        self._streams: set[AlpacaUpdateStream] = set()

    async def submit(self, request: OrderRequest) -> BrokerOrderState:
        body: dict[str, Any] = {
            "symbol": request.symbol,
            "qty": str(request.qty),
            "side": request.side.value,
            "type": request.order_type.value,
            "time_in_force": request.time_in_force.value,
            "client_order_id": request.client_order_id,
        }
        if request.limit_price is not None:
            body["limit_price"] = str(request.limit_price)
        raw = await call(self._retry, "submit", self._client.post, "/orders", body, submit=True)
        try:
            return parse_order(raw)
        except AlpacaPayloadError as error:
            raise BrokerAmbiguous(f"submit: the order was answered but unreadable: {error}") from error

    async def get_by_client_order_id(self, client_order_id: str) -> BrokerOrderState | None:
        try:
            raw = await call(
                self._retry, "get_by_client_order_id", self._client.get_order_by_client_id, client_order_id
            )
        except BrokerNotFound:
            return None
        return parse_order(raw)

    async def list_orders(
        self, *, open_only: bool = True, since_ns: int | None = None
    ) -> list[BrokerOrderState]:
        """Open orders, or all orders created at or after ``since_ns``, oldest first (every page)."""
        after = None if since_ns is None else since_ns - SINCE_MARGIN_NS
        seen: dict[str, BrokerOrderState] = {}
        while True:
            params: dict[str, Any] = {
                "status": "open" if open_only else "all",
                "limit": ORDERS_PAGE,
                "direction": "asc",
                "nested": "false",
            }
            if after is not None:
                params["after"] = format_time_ns(after)
            page = await call(self._retry, "list_orders", self._client.get, "/orders", params)
            fresh = [o for o in (parse_order(raw) for raw in page) if o.broker_order_id not in seen]
            for order in fresh:
                seen[order.broker_order_id] = order
            if len(page) < ORDERS_PAGE or not fresh:
                break
            after = max(o.created_ns for o in fresh) - 1
        found = [o for o in seen.values() if since_ns is None or o.created_ns >= since_ns]
        return sorted(found, key=lambda o: (o.created_ns, o.broker_order_id))

    async def cancel(self, broker_order_id: str) -> None:
        await call(self._retry, "cancel", self._client.cancel_order_by_id, broker_order_id)

    async def positions(self) -> list[BrokerPosition]:
        raw = await call(self._retry, "positions", self._client.get_all_positions)
        return [parse_position(p) for p in raw]

    async def account(self) -> BrokerAccount:
        return parse_account(await call(self._retry, "account", self._client.get_account))

    async def fills(self, *, since_ns: int | None = None) -> list[Fill]:
        """Every FILL activity at or after ``since_ns``, oldest first; client order ids looked up."""
        params: dict[str, Any] = {"direction": "asc", "page_size": ACTIVITIES_PAGE}
        if since_ns is not None:
            params["after"] = format_time_ns(since_ns - SINCE_MARGIN_NS)
        activities: list[dict[str, Any]] = []
        while True:
            page = await call(self._retry, "fills", self._client.get, "/account/activities/FILL", params)
            activities.extend(page)
            if len(page) < ACTIVITIES_PAGE:
                break
            params = {**params, "page_token": page[-1]["id"]}
        client_ids: dict[str, str] = {}
        result = []
        for activity in activities:
            if since_ns is not None and parse_time_ns(activity.get("transaction_time")) < since_ns:
                continue
            order_id = str(activity.get("order_id"))
            if order_id not in client_ids:
                order = await call(self._retry, "fills/order", self._client.get_order_by_id, order_id)
                client_ids[order_id] = str(order["client_order_id"])
            result.append(
                parse_fill_activity(
                    activity, client_order_id=client_ids[order_id], local_ts_ns=self._clock.now_ns()
                )
            )
        return result

    def updates(self) -> AlpacaUpdateStream:
        """A new ``trade_updates`` subscription; it ends (StopAsyncIteration) when the connection drops."""
        stream = AlpacaUpdateStream(
            self.stream_url,
            self._secrets,
            self._clock,
            timeout_s=self.settings.timeout_s,
            on_close=self._streams.discard,
        )
        self._streams.add(stream)
        return stream

    @property
    def open_streams(self) -> tuple[AlpacaUpdateStream, ...]:
        """The subscriptions not yet closed (tests await their ``listening()``)."""
        return tuple(self._streams)

    async def close(self) -> None:
        for stream in list(self._streams):
            await stream.aclose()
        self._streams.clear()
        self._client._session.close()
