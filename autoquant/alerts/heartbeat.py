"""The dead-man's switch: ``[alerts] heartbeat_url`` is fetched every ``heartbeat_s`` while the daemon is
healthy, so whoever watches that URL (healthchecks.io, Uptime Kuma, a cron job) notices a dead or stuck
process by the pings stopping. A failed ping is logged and never retried early: the next one is due.

The client is built and every request made on a worker thread: building an HTTP client loads the CA
bundle (tens of milliseconds), which must not happen on the trading loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import structlog

from autoquant.domain.clock import Clock

log = structlog.get_logger("autoquant.alerts")


async def ping_forever(url: str, period_s: float, healthy: Callable[[], bool], clock: Clock) -> None:
    client = await asyncio.to_thread(httpx.Client, timeout=min(10.0, period_s))
    try:
        while True:
            if healthy():
                try:
                    response = await asyncio.to_thread(client.get, url)
                    if response.status_code >= 400:
                        log.warning("heartbeat_refused", status=response.status_code)
                except httpx.HTTPError as error:
                    log.warning("heartbeat_failed", error=str(error) or type(error).__name__)
            else:
                log.warning("heartbeat_withheld", reason="a worker is not healthy")
            await clock.sleep(period_s)  # the ping's period
    finally:
        await asyncio.to_thread(client.close)
