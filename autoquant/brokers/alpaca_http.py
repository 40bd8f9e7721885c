"""alpaca-py's ``TradingClient`` made safe to call: a timeout on every request, no hidden retries,
errors translated once into ``autoquant.errors``, and our own bounded retry for what is safe to retry.

Sharp edges of alpaca-py 0.44 handled here (the version is pinned in pyproject.toml, so the two
private attributes touched below are stable):

- Its ``requests.Session`` has no timeout: ``_session`` is replaced by one that adds ``timeout_s`` to
  every request.
- ``_request`` retries 429 and 504 itself, sleeping 3 s, for POST /v2/orders too: ``_retry`` is set to
  0 and ``_retry_codes`` emptied, so every answer reaches us.
- ``alpaca.trading`` imports the deprecated ``websockets.legacy`` (for ``TradingStream``), which warns
  at import; the import is done once here with that one warning silenced.

Translation: 401, and 403 without an Alpaca code (bad keys) → ``BrokerAuthError``; 404 →
``BrokerNotFound``; 422 code 40010001 → ``DuplicateClientOrderId``; 429 → ``BrokerTransient`` (with
Retry-After); other 4xx (403 insufficient buying power included) → ``BrokerRejected`` with the broker's
message; 5xx, timeouts, dropped connections and unreadable answers → ``BrokerAmbiguous`` for a submit
and ``BrokerTransient`` for anything else. A connection that was never made (refused, connect
timeout) cannot have delivered a submit, so it is ``BrokerTransient`` even then.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from autoquant.brokers.alpaca_mapping import error_code
from autoquant.brokers.settings import BrokerSettings, Secrets
from autoquant.errors import (
    BrokerAmbiguous,
    BrokerAuthError,
    BrokerError,
    BrokerNotFound,
    BrokerRejected,
    BrokerTransient,
    DuplicateClientOrderId,
)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="websockets.legacy is deprecated", category=DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.trading.client import TradingClient

T = TypeVar("T")

CODE_DUPLICATE = 40010001


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff and full jitter; Retry-After wins when longer."""

    attempts: int = 5
    initial_s: float = 0.25
    max_s: float = 8.0
    max_retry_after_s: float = 60.0


class TimeoutSession(requests.Session):
    """A session whose every request has a timeout unless the caller gave one."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]  # same call, a default added
        kwargs.setdefault("timeout", self.timeout_s)
        return super().request(method, url, *args, **kwargs)


def make_client(settings: BrokerSettings, secrets: Secrets) -> Any:
    """A raw-data ``TradingClient`` with a timeout on every request and its own retries off."""
    client = TradingClient(
        api_key=secrets.key_id,
        secret_key=secrets.secret_key,
        paper=settings.paper,
        raw_data=True,
        url_override=settings.url,
    )
    client._session.close()
    client._session = TimeoutSession(settings.timeout_s)
    client._retry = 0
    client._retry_codes = []
    return client


def _retry_after(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def translate(error: Exception, *, submit: bool, what: str) -> BrokerError:
    """The ``autoquant.errors`` type for what alpaca-py or requests raised."""
    uncertain = BrokerAmbiguous if submit else BrokerTransient
    if isinstance(error, BrokerError):
        return error
    if isinstance(error, APIError):
        response = error.response
        status = error.status_code or 0
        code, message = error_code(str(error))
        text = f"{what}: {status} {message}"
        if status == 401 or (status == 403 and code is None):
            return BrokerAuthError(text, status=status, code=code)
        if status == 404:
            return BrokerNotFound(text, status=status, code=code)
        if status == 429:
            return BrokerTransient(text, status=status, code=code, retry_after_s=_retry_after(response))
        if status == 422 and code == CODE_DUPLICATE:
            return DuplicateClientOrderId(text, status=status, code=code)
        if 400 <= status < 500:
            return BrokerRejected(text, status=status, code=code)
        return uncertain(text, status=status, code=code)
    if isinstance(error, requests.ConnectTimeout):
        return BrokerTransient(f"{what}: could not connect in time: {error}")
    if isinstance(error, requests.ConnectionError) and _never_connected(error):
        return BrokerTransient(f"{what}: connection refused: {error}")
    if isinstance(error, requests.RequestException):
        return uncertain(f"{what}: {type(error).__name__}: {error}")
    if isinstance(error, ValueError):  # an answer that is not JSON
        return uncertain(f"{what}: unreadable answer: {error}")
    raise error


def _never_connected(error: requests.ConnectionError) -> bool:
    """True when the TCP connection was never made (refused, no route): the request never left."""
    stack: list[BaseException] = [error]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or type(current).__name__ == "NewConnectionError":
            return True
        linked = (
            *getattr(current, "args", ()),
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
        )
        stack.extend(item for item in linked if isinstance(item, BaseException))
    return False


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    jitter = wait_random_exponential(multiplier=policy.initial_s, max=policy.max_s)

    def wait(state: RetryCallState) -> float:
        backoff: float = jitter(state)
        error = state.outcome.exception() if state.outcome is not None else None
        hint = getattr(error, "retry_after_s", None)
        if isinstance(hint, float | int):
            return max(backoff, min(float(hint), policy.max_retry_after_s))
        return backoff

    return wait


async def call(policy: RetryPolicy, what: str, fn: Callable[..., T], *args: Any, submit: bool = False) -> T:
    """Run ``fn`` off the event loop, translating errors; retry only ``BrokerTransient`` outcomes."""

    async def once() -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except Exception as error:
            raise translate(error, submit=submit, what=what) from error

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_wait(policy),
        retry=retry_if_exception_type(BrokerTransient),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await once()
    raise AssertionError("unreachable: tenacity reraises the last error")
