"""``AlpacaBroker``: the ``Broker`` port over Alpaca's trading API and its ``trade_updates`` stream.

Pieces, each through public APIs only: ``alpaca_http`` owns the REST transport (httpx, a timeout
on every call, our bounded tenacity retries, errors translated once), ``alpaca_orders`` shapes an
order with alpaca-py's request models (money sent as exact decimal strings), ``alpaca_mapping``
validates Alpaca's JSON and reads it into the domain (a payload it cannot read is an
``AlpacaPayloadError`` naming the field, never dropped), ``alpaca_stream`` owns the
``trade_updates`` websocket.

What is retried (bounded, exponential backoff with jitter, the server's 429 hint honoured): reads,
cancels, and a submit refused before acceptance (429, connection refused). A submit that timed out,
got a 5xx, lost its connection, or was answered with something unreadable raises
``BrokerAmbiguous`` at once and is never resent here: the execution worker resolves it with
``get_by_client_order_id`` and only then resubmits the same id. A 422 "client_order_id must be
unique" is ``DuplicateClientOrderId``: the caller adopts the order it already sent.

``updates()`` returns a new ``AlpacaUpdateStream`` (one websocket): it ends with
``StopAsyncIteration`` when the connection drops, so the caller reconciles and calls ``updates()``
again (each new subscription after the first is logged as a reconnect); see ``alpaca_stream`` for
the typed errors it can end with instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import structlog

from autoquant.brokers.alpaca_http import AlpacaTransport, RetryPolicy
from autoquant.brokers.alpaca_mapping import (
    AlpacaPayloadError,
    expect_list,
    expect_object,
    format_time_ns,
    parse_account,
    parse_fill_activity,
    parse_order,
    parse_position,
    parse_time_ns,
)
from autoquant.brokers.alpaca_orders import order_body, replace_body
from autoquant.brokers.alpaca_stream import AlpacaUpdateStream
from autoquant.brokers.settings import AlpacaBrokerSettings, Secrets
from autoquant.clocks import SystemClock
from autoquant.domain.broker import (
    BrokerAccount,
    BrokerOrderState,
    BrokerPosition,
    FlattenResult,
    OrderRequest,
)
from autoquant.domain.clock import Clock
from autoquant.domain.fills import Fill
from autoquant.errors import BrokerAmbiguous, BrokerNotFound

log = structlog.get_logger("autoquant.alpaca")

PAPER_STREAM = "wss://paper-api.alpaca.markets/stream"
LIVE_STREAM = "wss://api.alpaca.markets/stream"
ORDERS_PAGE = 500
ACTIVITIES_PAGE = 100
#: Activities are asked for from this much before ``since_ns``, then filtered exactly here, so
#: whether Alpaca's ``after`` is inclusive or rounds the timestamp does not matter.
SINCE_MARGIN_NS = 1_000_000_000


def stream_url_for(settings: AlpacaBrokerSettings) -> str:
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
        settings: AlpacaBrokerSettings,
        secrets: Secrets,
        *,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.stream_url = stream_url_for(settings)
        self._secrets = secrets
        self._clock: Clock = clock or SystemClock()
        self._http = AlpacaTransport(settings, secrets, self._clock, retry=retry or RetryPolicy())
        self._streams: set[AlpacaUpdateStream] = set()
        self._subscriptions = 0

    async def submit(self, request: OrderRequest) -> BrokerOrderState:
        raw = await self._http.submit("submit", "/orders", order_body(request))
        try:
            return parse_order(expect_object(raw, "order"))
        except AlpacaPayloadError as error:
            raise BrokerAmbiguous(f"submit: the order was answered but unreadable: {error}") from error

    async def get_by_client_order_id(self, client_order_id: str) -> BrokerOrderState | None:
        try:
            raw = await self._http.get(
                "get_by_client_order_id", "/orders:by_client_order_id", {"client_order_id": client_order_id}
            )
        except BrokerNotFound:
            return None
        return parse_order(expect_object(raw, "order"))

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
            page = expect_list(await self._http.get("list_orders", "/orders", params), "orders")
            fresh = [o for o in (parse_order(raw) for raw in page) if o.broker_order_id not in seen]
            for order in fresh:
                seen[order.broker_order_id] = order
            if len(page) < ORDERS_PAGE or not fresh:
                break
            after = max(o.created_ns for o in fresh) - 1
        found = [o for o in seen.values() if since_ns is None or o.created_ns >= since_ns]
        return sorted(found, key=lambda o: (o.created_ns, o.broker_order_id))

    async def cancel(self, broker_order_id: str) -> None:
        await self._http.delete("cancel", f"/orders/{quote(broker_order_id, safe='')}")

    async def replace(self, broker_order_id: str, request: OrderRequest) -> BrokerOrderState:
        """``PATCH /v2/orders/{id}``: as ``submit``, never resent here after it may have arrived."""
        path = f"/orders/{quote(broker_order_id, safe='')}"
        raw = await self._http.submit("replace", path, replace_body(request), method="PATCH")
        try:
            return parse_order(expect_object(raw, "order"))
        except AlpacaPayloadError as error:
            raise BrokerAmbiguous(f"replace: the order was answered but unreadable: {error}") from error

    async def close_all_positions(self, *, cancel_orders: bool = True) -> FlattenResult:
        """``DELETE /v2/positions``: Alpaca answers 207 with ``{symbol, status, body}`` per position,
        the body the closing order (200) or the refusal."""
        params = {"cancel_orders": "true" if cancel_orders else "false"}
        raw = await self._http.delete("close_all_positions", "/positions", params, submit=True)
        try:
            results = expect_list(raw if raw is not None else [], "positions closed")
            orders = []
            failed: dict[str, str] = {}
            for entry in results:
                body = entry.get("body")
                if entry.get("status") == 200 and isinstance(body, dict):
                    orders.append(parse_order(body))
                else:
                    message = body.get("message") if isinstance(body, dict) else body
                    failed[str(entry.get("symbol"))] = str(message)
        except AlpacaPayloadError as error:
            raise BrokerAmbiguous(f"close all positions: answered but unreadable: {error}") from error
        return FlattenResult(orders=tuple(orders), failed=failed)

    async def positions(self) -> list[BrokerPosition]:
        raw = expect_list(await self._http.get("positions", "/positions"), "positions")
        return [parse_position(p) for p in raw]

    async def account(self) -> BrokerAccount:
        return parse_account(expect_object(await self._http.get("account", "/account"), "account"))

    async def fills(self, *, since_ns: int | None = None) -> list[Fill]:
        """Every FILL activity at or after ``since_ns``, oldest first; client order ids looked up."""
        params: dict[str, Any] = {"direction": "asc", "page_size": ACTIVITIES_PAGE}
        if since_ns is not None:
            params["after"] = format_time_ns(since_ns - SINCE_MARGIN_NS)
        activities: list[Any] = []
        while True:
            raw = await self._http.get("fills", "/account/activities/FILL", params)
            page = expect_list(raw, "activities")
            activities.extend(page)
            if len(page) < ACTIVITIES_PAGE:
                break
            last_id = page[-1].get("id")
            if not isinstance(last_id, str) or not last_id:
                raise AlpacaPayloadError(f"activities[{len(page) - 1}].id: missing", page[-1])
            params = {**params, "page_token": last_id}
        client_ids: dict[str, str] = {}
        result = []
        for activity in activities:
            when = parse_time_ns(activity.get("transaction_time"), "activity.transaction_time")
            if since_ns is not None and when < since_ns:
                continue
            order_id = activity.get("order_id")
            if not isinstance(order_id, str) or not order_id:
                raise AlpacaPayloadError("activity.order_id: missing", activity)
            if order_id not in client_ids:
                order = await self._http.get("fills/order", f"/orders/{quote(order_id, safe='')}")
                client_ids[order_id] = parse_order(expect_object(order, "order")).client_order_id
            result.append(
                parse_fill_activity(
                    activity, client_order_id=client_ids[order_id], local_ts_ns=self._clock.now_ns()
                )
            )
        return result

    def updates(self) -> AlpacaUpdateStream:
        """A new ``trade_updates`` subscription; it ends (StopAsyncIteration) when the connection drops."""
        self._subscriptions += 1
        if self._subscriptions > 1:
            log.warning("trade_updates_reconnecting", url=self.stream_url, subscription=self._subscriptions)
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
        await self._http.aclose()
