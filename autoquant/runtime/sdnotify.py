"""The systemd notify protocol (``sd_notify``) without a dependency, and a health-gated watchdog.

systemd passes ``$NOTIFY_SOCKET``: a unix datagram socket, in the abstract namespace when it starts
with ``@``. Each message is newline-separated ``KEY=VALUE`` lines: ``READY=1`` once start-up
reconciliation is clean, ``STATUS=...`` for ``systemctl status``, ``WATCHDOG=1`` as a keep-alive,
``STOPPING=1`` when the drain begins, ``EXTEND_TIMEOUT_USEC=`` while a long start-up is still busy.

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op returning False, so the daemon calls
them unconditionally. Sends never block: the socket is non-blocking and a full receiver queue
drops the message (logged), because a stalled notify must not stall trading.

The watchdog is only fed while the supervisor says every worker is alive (``WatchdogPinger``): a
hung worker then stops the pings and systemd restarts the daemon after ``WatchdogSec``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from typing import Final

import structlog

from autoquant.clocks import SystemClock
from autoquant.domain.clock import Clock

log = structlog.stdlib.get_logger(__name__)

SOCKET_VAR: Final = "NOTIFY_SOCKET"
WATCHDOG_USEC_VAR: Final = "WATCHDOG_USEC"
WATCHDOG_PID_VAR: Final = "WATCHDOG_PID"


def _socket_address(name: str) -> str:
    """``@name`` is Linux's abstract namespace, spelled with a leading NUL byte on the wire."""
    return "\0" + name[1:] if name.startswith("@") else name


class Notifier:
    """Sends notify messages to systemd's socket, or nothing at all when not run by systemd."""

    def __init__(self, socket_name: str | None, *, watchdog_usec: int | None = None) -> None:
        self.socket_name = socket_name or None
        self._watchdog_usec = watchdog_usec

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Read ``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC`` (unless ``$WATCHDOG_PID`` names another process)."""
        env = os.environ if environ is None else environ
        usec: int | None = None
        raw_usec = env.get(WATCHDOG_USEC_VAR, "")
        raw_pid = env.get(WATCHDOG_PID_VAR, "")
        for_us = not raw_pid or (raw_pid.isdigit() and int(raw_pid) == os.getpid())
        if raw_usec.isdigit() and int(raw_usec) > 0 and for_us:
            usec = int(raw_usec)
        return cls(env.get(SOCKET_VAR), watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        return self.socket_name is not None

    def notify(self, message: str) -> bool:
        """Send one raw message (``KEY=VALUE`` lines); True when it was handed to the socket."""
        if self.socket_name is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.connect(_socket_address(self.socket_name))
                sock.send(message.encode("utf-8"))
        except OSError as error:
            log.warning("sd_notify_failed", message=message, error=str(error))
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Start-up is done (for autoquant: the startup reconciliation came back clean)."""
        return self.notify("READY=1" if status is None else f"READY=1\nSTATUS={_one_line(status)}")

    def status(self, text: str) -> bool:
        """The one-line state ``systemctl status`` shows (trading state, open orders, …)."""
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        """The drain has begun; systemd waits up to TimeoutStopSec."""
        return self.notify("STOPPING=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before the start (or stop) times out: a long reconciliation is busy."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def watchdog_interval_s(self) -> float | None:
        """How often to ping: half of ``$WATCHDOG_USEC`` (systemd's advice); None without a watchdog."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000


def _one_line(text: str) -> str:
    """A newline in STATUS would start a new KEY=VALUE assignment."""
    return " ".join(text.splitlines())


class WatchdogPinger:
    """Sends WATCHDOG=1 every interval while ``healthy()`` is True; withholds it while it is not.

    The supervisor passes a check that every worker's heartbeat is fresh. When it turns False (or
    raises) the pings stop and systemd restarts the daemon once ``WatchdogSec`` passes; if it turns
    True again first (a worker was restarted in time), the pings resume.
    """

    def __init__(
        self,
        notifier: Notifier,
        healthy: Callable[[], bool],
        *,
        interval_s: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._notifier = notifier
        self._healthy = healthy
        self._interval_s = notifier.watchdog_interval_s() if interval_s is None else interval_s
        self.pings = 0

    @property
    def interval_s(self) -> float | None:
        return self._interval_s

    async def run(self) -> None:
        """Ping until cancelled; returns at once when systemd asked for no watchdog."""
        interval = self._interval_s
        if interval is None or not self._notifier.enabled:
            return
        withheld = False
        next_at = self._clock.monotonic()
        while True:
            if self._is_healthy():
                if withheld:
                    log.info("watchdog_resumed")
                    withheld = False
                if self._notifier.watchdog():
                    self.pings += 1
            elif not withheld:
                log.warning("watchdog_withheld", reason="a worker is not healthy")
                withheld = True
            # A fixed schedule, so a slow loop iteration does not push every later ping back.
            next_at = max(next_at + interval, self._clock.monotonic())
            await self._clock.sleep(next_at - self._clock.monotonic())

    def _is_healthy(self) -> bool:
        try:
            return bool(self._healthy())
        except Exception:
            log.exception("watchdog_health_check_failed")
            return False
