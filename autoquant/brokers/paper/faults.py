"""Faults the paper server injects on request, drawn from one seeded ``random.Random``.

Where each fault strikes, so tests know what the client can conclude:

- ``rate_limit_429`` and ``error_5xx``: before the engine is touched. A 429 therefore never changes
  anything; a 503 also changes nothing here, but the client cannot know that (at Alpaca a 5xx may
  come after the order was taken), so a submit answered with 5xx is ambiguous to it.
- ``slow_response``: the request is read, then handled ``slow_response_s`` later, even if the
  client has given up meanwhile (a submit is then accepted but answered too late).
- ``drop_response_after_accept``: ``POST /v2/orders`` only. The engine accepts the order, then the
  TCP connection is aborted (RST) with no response at all; the client sees a connection error at
  once rather than waiting out its timeout.
- ``duplicate_stream_event``: a ``trade_updates`` frame is sent twice.
- ``reorder_stream_events``: a frame is held back and sent right after the next one (or after
  ``REORDER_HOLD_S`` if no other comes).
- ``stream_disconnect_every_s``: every ``trade_updates`` connection is closed after that long.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import MutableMapping
from typing import Any

from autoquant.brokers.settings import FaultSettings

REORDER_HOLD_S = 0.5


class FaultInjector:
    """Decides, per request or frame, whether a fault strikes. One instance per server."""

    def __init__(self, settings: FaultSettings, seed: int) -> None:
        self.settings = settings
        self._random = random.Random(seed)

    def _strikes(self, probability: float) -> bool:
        return probability > 0 and self._random.random() < probability

    def rate_limited(self) -> bool:
        return self._strikes(self.settings.rate_limit_429)

    def server_error(self) -> bool:
        return self._strikes(self.settings.error_5xx)

    def slow(self) -> bool:
        return self._strikes(self.settings.slow_response)

    def drop_after_accept(self) -> bool:
        return self._strikes(self.settings.drop_response_after_accept)

    def duplicate_event(self) -> bool:
        return self._strikes(self.settings.duplicate_stream_event)

    def reorder_event(self) -> bool:
        return self._strikes(self.settings.reorder_stream_events)


async def abort_connection(scope: MutableMapping[str, Any]) -> bool:
    """Reset the request's TCP connection without a response; False if the transport is unreachable.

    uvicorn does not expose the transport to the app; ``PaperApp`` stashes it in the scope from the
    ``send`` callable uvicorn hands the application (its request cycle's bound method). After the
    abort, yielding to the loop lets uvicorn see ``connection_lost``, so it writes nothing more.
    """
    transport = scope.get(TRANSPORT_KEY)
    if not isinstance(transport, asyncio.Transport):
        return False
    transport.abort()
    for _ in range(3):
        await asyncio.sleep(0)
    return True


TRANSPORT_KEY = "autoquant.transport"
