"""Alpaca's ``X-RateLimit-*`` headers on every REST answer of the paper server.

Alpaca allows 200 requests a minute per account and says where a client stands on every response:
``X-RateLimit-Limit`` (per minute), ``X-RateLimit-Remaining`` (left in this minute, never below 0) and
``X-RateLimit-Reset`` (the Unix second the minute ends). The paper server counts and reports the same
way on the exchange's clock but does not refuse on its own: a 429 comes only from an injected fault
(``faults.rate_limit_429``), so tests choose when a client meets one.
"""

from __future__ import annotations

from autoquant.domain.clock import Clock

LIMIT_PER_MINUTE = 200
MINUTE_NS = 60_000_000_000


class RateLimitWindow:
    """Requests counted per clock minute."""

    def __init__(self, clock: Clock, limit: int = LIMIT_PER_MINUTE) -> None:
        self._clock = clock
        self.limit = limit
        self._minute = -1
        self._count = 0

    def count(self) -> dict[str, str]:
        """Count one request; the headers that answer it."""
        minute = self._clock.now_ns() // MINUTE_NS
        if minute != self._minute:
            self._minute, self._count = minute, 0
        self._count += 1
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.limit - self._count, 0)),
            "X-RateLimit-Reset": str((minute + 1) * MINUTE_NS // 1_000_000_000),
        }
