"""Delivery through Apprise on its own thread: a bounded queue, a timeout per attempt, a few attempts with
jittered exponential backoff, and each outcome handed back to be recorded in the ledger.

Apprise is synchronous; running it on the event loop would let a dead webhook stall trading. Here a dead
channel costs only this thread's time: the loop's ``submit`` is a ``put_nowait`` and never waits.
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import apprise
import structlog

from autoquant.alerts.settings import AlertSettings, ChannelSettings

log = structlog.get_logger("autoquant.alerts")

#: (alert id, channel label, outcome, attempts, detail) -> None; called on the delivery thread.
Report = Callable[[str, str, str, int, str], None]


@dataclass(frozen=True)
class Job:
    alert_id: str
    title: str
    body: str
    severity: str


def channel_label(url: str) -> str:
    """The scheme and host of a channel URL: never its secrets (tokens sit in the path or user part)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def with_timeouts(url: str, timeout_s: float) -> str:
    """Apprise's per-URL connect (``cto``) and read (``rto``) timeouts, unless the URL sets its own."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("cto", f"{timeout_s:g}")
    query.setdefault("rto", f"{timeout_s:g}")
    return urlunsplit(parts._replace(query=urlencode(query)))


def _load_plugins() -> None:
    """Apprise loads its plugins on first use; one of them (e-mail, on Python 3.11) warns that ``imghdr``
    is deprecated. Loaded here, once, on the delivery thread, with that warning silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        apprise.Apprise().add("json://localhost")


_APPRISE_TYPE = {"info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING}


class Deliverer:
    """One channel's thread and queue: a dead channel delays only its own alerts, never another's."""

    def __init__(
        self,
        settings: AlertSettings,
        channel: ChannelSettings,
        report: Report,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.channel = channel
        self.report = report
        self.sleep = sleep
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=settings.queue_size)
        self.thread = threading.Thread(
            target=self._run, name=f"alerts {channel_label(channel.url)}", daemon=True
        )
        self.delivered = 0
        self.failed = 0

    def start(self) -> None:
        self.thread.start()

    def submit(self, job: Job) -> bool:
        """Queue an alert for delivery; False (never a wait) when the queue is full."""
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            return False
        return True

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to finish what it holds; it is a daemon thread, so a dead channel cannot hold
        the process past ``timeout_s``."""
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(None)
        self.thread.join(timeout_s)

    def _run(self) -> None:
        _load_plugins()
        while True:
            job = self.queue.get()
            if job is None:
                return
            self._deliver(job, self.channel)

    def _deliver(self, job: Job, channel: ChannelSettings) -> None:
        settings = self.settings
        label = channel_label(channel.url)
        detail = ""
        for attempt in range(1, settings.attempts + 1):
            notifier = apprise.Apprise()
            if not notifier.add(with_timeouts(channel.url, settings.timeout_s)):
                self._report(job.alert_id, label, "failed", attempt, "Apprise does not accept this URL")
                return
            try:
                ok = bool(
                    notifier.notify(
                        title=job.title,
                        body=job.body,
                        notify_type=_APPRISE_TYPE.get(job.severity, apprise.NotifyType.FAILURE),
                    )
                )
            except Exception as error:  # a plugin's own error must not end the delivery thread
                ok, detail = False, repr(error)
            if ok:
                self.delivered += 1
                self._report(job.alert_id, label, "delivered", attempt, "")
                return
            detail = detail or "the channel refused or did not answer in time"
            if attempt < settings.attempts:
                pause = settings.backoff_s * 2 ** (attempt - 1)
                self.sleep(pause * random.uniform(0.5, 1.5))  # jittered backoff, on this thread only
        self.failed += 1
        log.warning("alert_delivery_failed", alert_id=job.alert_id, channel=label, detail=detail)
        self._report(job.alert_id, label, "failed", settings.attempts, detail)

    def _report(self, alert_id: str, label: str, outcome: str, attempts: int, detail: str) -> None:
        try:
            self.report(alert_id, label, outcome, attempts, detail)
        except Exception:  # recording is best effort once the loop has gone (shutdown)
            log.warning("alert_outcome_not_recorded", alert_id=alert_id, channel=label, outcome=outcome)
