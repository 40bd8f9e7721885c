"""``[alerts]`` and its ``[[alerts.channels]]``: where alerts go, which, and the dead-man's switch.

TOML cannot hold both ``[[alerts]]`` (an array) and ``[alerts] heartbeat_url`` (a table) under one
name, so the channels are an array inside the table::

    [alerts]
    heartbeat_url = "https://hc-ping.com/…"   # pinged every heartbeat_s while the daemon is healthy
    [[alerts.channels]]
    url = "json://127.0.0.1:9000/hook"         # any Apprise URL
    events = ["halted", "incident_opened"]     # default: every event
    min_severity = "warning"
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from autoquant.domain.settings import Section


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "critical": 2}[self.value]


class AlertEvent(StrEnum):
    INCIDENT_OPENED = "incident_opened"
    HALTED = "halted"
    REDUCING = "reducing"
    PAUSED_BY_DAEMON = "paused_by_daemon"
    WORKER_CRASH_LOOP = "worker_crash_loop"
    BROKER_UNREACHABLE = "broker_unreachable"
    RECONCILIATION_MISMATCH = "reconciliation_mismatch"
    DAILY_SUMMARY = "daily_summary"


class ChannelSettings(Section):
    #: An Apprise URL (``json://host/path``, ``tgram://…``, ``slack://…``, ``mailto://…``).
    url: str = Field(min_length=3)
    #: Only these events (default: all).
    events: list[AlertEvent] | None = None
    min_severity: Severity = Severity.INFO


class AlertSettings(Section):
    channels: list[ChannelSettings] = Field(default_factory=list)
    heartbeat_url: str | None = None
    heartbeat_s: float = Field(default=60.0, gt=0)
    #: One delivery attempt's bound; a channel gets ``attempts`` of them with jittered backoff.
    timeout_s: float = Field(default=5.0, gt=0)
    attempts: int = Field(default=3, ge=1)
    backoff_s: float = Field(default=1.0, gt=0)
    #: The same alert (event and subject) again within this window is folded into the first.
    dedup_window_s: float = Field(default=300.0, ge=0)
    #: Alerts waiting beyond this are dropped (recorded as such) rather than held in memory.
    queue_size: int = Field(default=1000, gt=0)
    #: The broker unreachable for longer than this raises ``broker_unreachable``.
    broker_unreachable_s: float = Field(default=60.0, gt=0)
    #: UTC time of the daily summary, ``HH:MM``; unset = none.
    daily_summary_utc: str | None = None
