"""The daemon's alerting, wired: the alert worker (never crashing into the supervisor, whose crash loop
would halt trading: a failing alert worker logs and starts over) and the dead-man's-switch pinger."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from autoquant.alerts.heartbeat import ping_forever
from autoquant.alerts.worker import AlertWorker
from autoquant.domain.clock import Clock
from autoquant.ledger import Ledger
from autoquant.runtime.config import Config
from autoquant.runtime.supervisor import WorkerSpec

log = structlog.get_logger("autoquant.alerts")


def alerting_enabled(config: Config) -> bool:
    return bool(config.alerts.channels) or config.alerts.heartbeat_url is not None


def alert_worker(config: Config, ledger: Ledger, clock: Clock) -> AlertWorker:
    bound = max(config.alerts.broker_unreachable_s, 3 * config.reconcile.interval_s)
    return AlertWorker(ledger, config.alerts, clock, unreachable_after_s=bound)


def alert_spec(worker: AlertWorker, clock: Clock) -> WorkerSpec:
    async def run() -> None:
        pause = 1.0
        while True:
            try:
                await worker.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert_worker_failed", retry_in_s=pause)
                await clock.sleep(pause)  # backoff before starting over
                pause = min(60.0, pause * 2)

    return WorkerSpec("alerts", run)


def heartbeat_spec(config: Config, healthy: Callable[[], bool], clock: Clock) -> WorkerSpec | None:
    url = config.alerts.heartbeat_url
    if url is None:
        return None

    async def run() -> None:
        while True:
            try:
                await ping_forever(url, config.alerts.heartbeat_s, healthy, clock)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat_pinger_failed")
                await clock.sleep(config.alerts.heartbeat_s)

    return WorkerSpec("heartbeat", run)
