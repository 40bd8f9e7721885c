"""The systemd notify protocol against a real datagram socket, and the health-gated watchdog."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoquant.runtime.sdnotify import Notifier, WatchdogPinger


class Receiver:
    """A stand-in for systemd's end of $NOTIFY_SOCKET: a bound unix datagram socket."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name

    def receive(self, timeout_s: float = 5.0) -> str:
        self.sock.settimeout(timeout_s)
        return self.sock.recv(4096).decode("utf-8")

    def pending(self) -> list[str]:
        self.sock.setblocking(False)
        messages = []
        while True:
            try:
                messages.append(self.sock.recv(4096).decode("utf-8"))
            except BlockingIOError:
                return messages

    async def areceive(self, timeout_s: float = 5.0) -> str:
        self.sock.setblocking(False)
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), timeout_s)
        return data.decode("utf-8")


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        yield Receiver(sock, str(path))


def test_unset_socket_is_a_silent_no_op() -> None:
    """Without $NOTIFY_SOCKET nothing is sent, nothing raises, and there is no watchdog."""
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog_interval_s() is None


def test_ready_status_and_stopping_reach_the_socket(receiver: Receiver) -> None:
    """READY=1, STATUS=<text> (one line) and STOPPING=1 arrive as separate datagrams."""
    notifier = Notifier.from_env({"NOTIFY_SOCKET": receiver.name})
    assert notifier.ready()
    assert receiver.receive() == "READY=1"
    assert notifier.status("trading ACTIVE\n3 open orders")
    assert receiver.receive() == "STATUS=trading ACTIVE 3 open orders"
    assert notifier.stopping()
    assert receiver.receive() == "STOPPING=1"
    assert notifier.extend_timeout(90)
    assert receiver.receive() == "EXTEND_TIMEOUT_USEC=90000000"


def test_abstract_socket_names_start_with_at() -> None:
    """An @name in $NOTIFY_SOCKET addresses the abstract namespace (a leading NUL byte)."""
    name = f"autoquant-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        receiver = Receiver(sock, "@" + name)
        assert Notifier.from_env({"NOTIFY_SOCKET": receiver.name}).ready()
        assert receiver.receive() == "READY=1"


def test_send_to_a_missing_socket_returns_false(tmp_path: Path) -> None:
    """A socket that is gone makes the call return False instead of crashing the daemon."""
    assert Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).ready() is False


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    """WATCHDOG_USEC=30s gives a 15 s ping interval; another process's WATCHDOG_PID disables it."""
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000"}
    assert Notifier.from_env(env).watchdog_interval_s() == 15.0
    assert Notifier.from_env({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval_s() == 15.0
    assert Notifier.from_env({**env, "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_interval_s() is None
    assert Notifier.from_env({"WATCHDOG_USEC": "junk"}).watchdog_interval_s() is None


async def test_watchdog_pings_at_half_the_interval(receiver: Receiver) -> None:
    """With WATCHDOG_USEC=200ms the pinger sends WATCHDOG=1 about every 100 ms while healthy."""
    notifier = Notifier.from_env({"NOTIFY_SOCKET": receiver.name, "WATCHDOG_USEC": "200000"})
    pinger = WatchdogPinger(notifier, lambda: True)
    assert pinger.interval_s == 0.1
    async with asyncio.TaskGroup() as group:
        task = group.create_task(pinger.run())
        assert await receiver.areceive() == "WATCHDOG=1"
        await asyncio.sleep(0.55)  # the measured window itself, not a wait for a condition
        task.cancel()
    pings = receiver.pending()
    assert set(pings) == {"WATCHDOG=1"}
    assert 3 <= len(pings) <= 6, pings  # five expected in 0.55 s after the first


async def test_watchdog_stops_while_unhealthy_and_resumes(receiver: Receiver) -> None:
    """Once healthy() turns False no WATCHDOG=1 is sent; pings come back when it turns True again."""
    notifier = Notifier.from_env({"NOTIFY_SOCKET": receiver.name, "WATCHDOG_USEC": "100000"})
    health = {"ok": True}
    checks = 0

    def healthy() -> bool:
        nonlocal checks
        checks += 1
        return health["ok"]

    pinger = WatchdogPinger(notifier, healthy)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(pinger.run())
        assert await receiver.areceive() == "WATCHDOG=1"
        health["ok"] = False
        seen = checks
        deadline = time.monotonic() + 5
        while checks < seen + 5:  # five unhealthy checks, i.e. five missed pings
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        receiver.pending()  # a ping already in flight when health turned
        pings = pinger.pings
        seen = checks
        while checks < seen + 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert receiver.pending() == []
        assert pinger.pings == pings
        health["ok"] = True
        assert await receiver.areceive() == "WATCHDOG=1"
        task.cancel()


async def test_health_check_that_raises_counts_as_unhealthy(receiver: Receiver) -> None:
    """A health check that raises withholds the ping instead of killing the pinger."""
    notifier = Notifier.from_env({"NOTIFY_SOCKET": receiver.name, "WATCHDOG_USEC": "50000"})
    calls = 0

    def broken() -> bool:
        nonlocal calls
        calls += 1
        raise RuntimeError("heartbeat table unreadable")

    pinger = WatchdogPinger(notifier, broken)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(pinger.run())
        deadline = time.monotonic() + 5
        while calls < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        task.cancel()
    assert receiver.pending() == []
    assert pinger.pings == 0


async def test_pinger_without_watchdog_returns_at_once() -> None:
    """When systemd asked for no watchdog, run() returns immediately."""
    await asyncio.wait_for(WatchdogPinger(Notifier.from_env({}), lambda: True).run(), 1)
