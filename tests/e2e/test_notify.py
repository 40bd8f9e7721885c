"""The daemon speaks systemd's notify protocol: READY only after reconciliation, WATCHDOG, STOPPING."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.daemon_harness import DaemonProcess, query

pytestmark = pytest.mark.slow


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    yield sock, path
    sock.close()


def receive_until(sock: socket.socket, wanted: str, timeout_s: float, seen: list[tuple[float, str]]) -> str:
    """Collect datagrams until one contains ``wanted``; return it (all are appended to ``seen``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            continue
        seen.append((time.monotonic(), message))
        if wanted in message:
            return message
    raise AssertionError(f"no {wanted!r} within {timeout_s}s; got {[m for _, m in seen]}")


def test_ready_after_reconciliation_then_watchdog_then_stopping(
    tmp_path: Path, listener: tuple[socket.socket, Path]
) -> None:
    """READY=1 comes only once the start-up reconciliation is in the ledger, with a STATUS line;
    WATCHDOG=1 follows at half of WATCHDOG_USEC; SIGTERM sends STOPPING=1 and exits 0."""
    sock, path = listener
    daemon = DaemonProcess(tmp_path, extra_env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
    seen: list[tuple[float, str]] = []
    try:
        daemon.start()
        ready = receive_until(sock, "READY=1", 60, seen)
        assert query(daemon.ledger, "SELECT 1 FROM reconciliations WHERE trigger = 'startup'"), (
            "READY=1 was sent before the start-up reconciliation was recorded"
        )
        assert "STATUS=trading ACTIVE" in ready
        receive_until(sock, "WATCHDOG=1", 5, seen)
        receive_until(sock, "WATCHDOG=1", 5, seen)
        pings = [t for t, m in seen if "WATCHDOG=1" in m]
        assert pings[-1] - pings[-2] < 0.9, "pings come about every half interval"
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGTERM)
        receive_until(sock, "STOPPING=1", 15, seen)
        assert daemon.process.wait(timeout=15) == 0, daemon.tail()
    finally:
        daemon.kill()
