"""The Alpaca trading API's transport, owned here: httpx for the HTTP, tenacity for the retries.

Why not alpaca-py's ``TradingClient``: its REST calls have no timeout, it retries POST /v2/orders by
itself on 429 and 504 (a submit that may have landed, sent again), and reaching into it to change
that means touching private attributes. So this module speaks HTTP itself, through public APIs only:

- **Timeouts.** Every attempt is bounded by ``[broker] timeout_s``, end to end (httpx's connect,
  read, write and pool timeouts, and an overall deadline around the whole exchange, so a server
  that trickles bytes cannot hold a call longer).
- **Errors translated once** into ``autoquant.errors``: 401, and 403 without an Alpaca code (bad
  keys) → ``BrokerAuthError``; 404 → ``BrokerNotFound``; 422 code 40010001 →
  ``DuplicateClientOrderId`` (adopt); 429 → ``BrokerTransient`` carrying the server's hint
  (``Retry-After`` in seconds or as an HTTP date, else ``X-RateLimit-Reset``, Alpaca's epoch
  seconds); other 4xx (403 insufficient buying power included) → ``BrokerRejected`` with the
  broker's message; 5xx, timeouts and connections lost mid-request → ``BrokerAmbiguous`` for a
  submit and ``BrokerTransient`` for anything else. A connection that was never made (refused,
  connect timeout, no pooled connection free) cannot have delivered a submit, so it is
  ``BrokerTransient`` even then. A 2xx body that is not JSON is ``AlpacaPayloadError`` for a read
  and ``BrokerAmbiguous`` for a submit (it may have landed).
- **Retries** (bounded attempts, exponential backoff with full jitter, the server's hint honoured
  when longer, capped by ``max_retry_after_s``) only for ``BrokerTransient``: reads, cancels, and a
  submit refused before acceptance. Every retry is logged (``broker_call_retrying``).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from autoquant.brokers.alpaca_mapping import AlpacaPayloadError, error_code
from autoquant.brokers.settings import AlpacaBrokerSettings, Secrets
from autoquant.domain.clock import Clock
from autoquant.errors import (
    BrokerAmbiguous,
    BrokerAuthError,
    BrokerError,
    BrokerNotFound,
    BrokerRejected,
    BrokerTransient,
    DuplicateClientOrderId,
)

log = structlog.get_logger("autoquant.alpaca")

PAPER_URL: Final = "https://paper-api.alpaca.markets"
LIVE_URL: Final = "https://api.alpaca.markets"
API_VERSION: Final = "v2"
CODE_DUPLICATE: Final = 40010001
USER_AGENT: Final = "autoquant"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff and full jitter; the server's hint wins when longer."""

    attempts: int = 5
    initial_s: float = 0.25
    max_s: float = 8.0
    max_retry_after_s: float = 60.0


def base_url_for(settings: AlpacaBrokerSettings) -> str:
    """``[broker] url`` (a paper-server, a proxy), else Alpaca's paper or live endpoint."""
    if settings.url:
        return settings.url.rstrip("/")
    return PAPER_URL if settings.paper else LIVE_URL


def retry_hint_s(headers: Mapping[str, str], now_ns: int) -> float | None:
    """Seconds the server asks us to wait: ``Retry-After`` (seconds or an HTTP date), else
    ``X-RateLimit-Reset`` (Alpaca's: the epoch second the window reopens). None when neither says."""
    value = headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, when.timestamp() - now_ns / 1e9)
    reset = headers.get("x-ratelimit-reset")
    if reset is not None:
        try:
            return max(0.0, float(reset) - now_ns / 1e9)
        except ValueError:
            return None
    return None


def translate_status(response: httpx.Response, *, submit: bool, what: str, now_ns: int) -> BrokerError:
    """The ``autoquant.errors`` type for an HTTP error answer."""
    status = response.status_code
    code, message = error_code(response.text)
    text = f"{what}: {status} {message}"
    if status == 401 or (status == 403 and code is None):
        return BrokerAuthError(text, status=status, code=code)
    if status == 404:
        return BrokerNotFound(text, status=status, code=code)
    if status == 429:
        hint = retry_hint_s(response.headers, now_ns)
        return BrokerTransient(text, status=status, code=code, retry_after_s=hint)
    if status == 422 and code == CODE_DUPLICATE:
        return DuplicateClientOrderId(text, status=status, code=code)
    if 400 <= status < 500:
        return BrokerRejected(text, status=status, code=code)
    uncertain = BrokerAmbiguous if submit else BrokerTransient
    return uncertain(text, status=status, code=code)


def translate_transport(error: Exception, *, submit: bool, what: str, timeout_s: float) -> BrokerError:
    """The ``autoquant.errors`` type for a request that got no answer."""
    if isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout):
        return BrokerTransient(f"{what}: could not connect within {timeout_s:g}s: {error!r}")
    if isinstance(error, httpx.ConnectError):
        # httpx raises ConnectError only while opening a connection: the request never left.
        return BrokerTransient(f"{what}: could not connect: {error!r}")
    uncertain = BrokerAmbiguous if submit else BrokerTransient
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return uncertain(f"{what}: no answer within {timeout_s:g}s")
    return uncertain(f"{what}: connection lost: {type(error).__name__}: {error}")


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    jitter = wait_random_exponential(multiplier=policy.initial_s, max=policy.max_s)

    def wait(state: RetryCallState) -> float:
        backoff: float = jitter(state)
        error = state.outcome.exception() if state.outcome is not None else None
        hint = error.retry_after_s if isinstance(error, BrokerTransient) else None
        if hint is not None:
            return max(backoff, min(hint, policy.max_retry_after_s))
        return backoff

    return wait


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "broker_call_retrying",
            call=what,
            attempt=state.attempt_number,
            wait_s=round(state.upcoming_sleep, 3),
            status=getattr(error, "status", None),
            retry_after_s=getattr(error, "retry_after_s", None),
            error=str(error),
        )

    return before_sleep


class AlpacaTransport:
    """Authenticated JSON calls to ``{base}/v2/...`` with timeouts, translation and bounded retries."""

    def __init__(
        self,
        settings: AlpacaBrokerSettings,
        secrets: Secrets,
        clock: Clock,
        *,
        retry: RetryPolicy,
    ) -> None:
        self.base_url = base_url_for(settings)
        self.timeout_s = settings.timeout_s
        self._policy = retry
        self._clock = clock
        self._client = httpx.AsyncClient(
            base_url=f"{self.base_url}/{API_VERSION}",
            headers={
                "APCA-API-KEY-ID": secrets.key_id,
                "APCA-API-SECRET-KEY": secrets.secret_key,
                "User-Agent": USER_AGENT,
            },
            timeout=httpx.Timeout(settings.timeout_s),
            follow_redirects=False,
        )

    async def get(self, what: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path``; its JSON (retried while transient)."""
        return await self._call(what, "GET", path, params=params)

    async def delete(
        self, what: str, path: str, params: Mapping[str, Any] | None = None, *, submit: bool = False
    ) -> Any:
        """DELETE ``path``; its JSON, or None for an empty answer (retried while transient). With
        ``submit`` (a DELETE that places orders, such as closing positions) as ``submit`` is."""
        return await self._call(what, "DELETE", path, params=params, submit=submit)

    async def submit(self, what: str, path: str, body: Mapping[str, Any], *, method: str = "POST") -> Any:
        """POST (or PATCH, a replace) ``body`` to ``path``; retried only when the request surely never
        reached the broker."""
        return await self._call(what, method, path, body=body, submit=True)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(
        self,
        what: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        submit: bool = False,
    ) -> Any:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._policy.attempts),
            wait=_wait(self._policy),
            retry=retry_if_exception_type(BrokerTransient),
            before_sleep=_log_retry(what),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._once(what, method, path, params=params, body=body, submit=submit)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _once(
        self,
        what: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        body: Mapping[str, Any] | None,
        submit: bool,
    ) -> Any:
        content = None if body is None else json.dumps(body).encode()
        headers = {} if content is None else {"Content-Type": "application/json"}
        request = self._client.build_request(method, path, params=params, content=content, headers=headers)
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._client.send(request)
        except (httpx.TransportError, TimeoutError) as error:
            raise translate_transport(error, submit=submit, what=what, timeout_s=self.timeout_s) from error
        if response.status_code >= 400:
            raise translate_status(response, submit=submit, what=what, now_ns=self._clock.now_ns())
        if not response.content:
            return None
        try:
            return json.loads(response.content)
        except ValueError as error:
            unreadable = AlpacaPayloadError(
                f"{what}: the answer is not JSON: {response.text[:200]!r}", response.text[:2000]
            )
            if submit:
                raise BrokerAmbiguous(f"{what}: the order was answered but unreadable") from unreadable
            raise unreadable from error
