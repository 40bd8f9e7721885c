"""The supervisor with real asyncio tasks: crash logging, restart with backoff, repeated-crash hook,
heartbeat health and stopping one worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from structlog.testing import capture_logs

from autoquant.clocks import SystemClock
from autoquant.errors import BrokerAuthError
from autoquant.runtime.supervisor import Supervisor, WorkerSpec


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll ``condition`` with a short sleep until it holds, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.005)


class Flaky:
    """A worker that raises on its first ``failures`` runs, then runs until cancelled."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.starts: list[float] = []
        self.forever = asyncio.Event()

    async def run(self) -> None:
        self.starts.append(time.monotonic())
        if len(self.starts) <= self.failures:
            raise RuntimeError(f"boom {len(self.starts)}")
        await self.forever.wait()


class Hook:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, name: str, error: BaseException) -> None:
        self.calls.append((name, str(error)))


async def test_crashing_worker_is_logged_and_restarted_with_growing_backoff() -> None:
    """Each crash is logged with its traceback; restarts wait base, then twice base."""
    hook = Hook()
    supervisor = Supervisor(hook, clock=SystemClock(), base_backoff_s=0.05, max_crashes=10)
    flaky = Flaky(failures=2)
    with capture_logs() as logs:
        async with asyncio.TaskGroup() as group:
            supervisor.start(group, WorkerSpec("flaky", flaky.run))
            await wait_until(lambda: len(flaky.starts) == 3)
            await supervisor.stop("flaky")
    crashes = [entry for entry in logs if entry["event"] == "worker_crashed"]
    assert [entry["crashes"] for entry in crashes] == [1, 2]
    assert all(entry["log_level"] == "error" and entry.get("exc_info") for entry in crashes)
    assert all(entry["crashed_worker"] == "flaky" for entry in crashes)
    assert [e["restarts"] for e in logs if e["event"] == "worker_restarted"] == [1, 2]
    first_gap = flaky.starts[1] - flaky.starts[0]
    second_gap = flaky.starts[2] - flaky.starts[1]
    assert first_gap >= 0.05 and second_gap >= 0.1, (first_gap, second_gap)
    assert supervisor.status["flaky"].restarts == 2
    assert hook.calls == [], "two crashes are below max_crashes"


async def test_repeated_crashes_within_the_window_call_the_hook() -> None:
    """The third crash within window_s calls on_repeated_crash with the worker's name and error."""
    hook = Hook()
    supervisor = Supervisor(hook, clock=SystemClock(), base_backoff_s=0.001, max_crashes=3, window_s=60.0)
    flaky = Flaky(failures=3)
    async with asyncio.TaskGroup() as group:
        supervisor.start(group, WorkerSpec("strategy", flaky.run))
        await wait_until(lambda: len(flaky.starts) == 4)
        assert supervisor.status["strategy"].running
        await supervisor.stop("strategy")
    assert hook.calls == [("strategy", "boom 3")]


async def test_crashes_spread_beyond_the_window_do_not_call_the_hook() -> None:
    """Crashes older than window_s are forgotten, so slow occasional crashes never trip the hook."""
    hook = Hook()
    supervisor = Supervisor(hook, clock=SystemClock(), base_backoff_s=0.06, max_crashes=2, window_s=0.05)
    flaky = Flaky(failures=3)
    async with asyncio.TaskGroup() as group:
        supervisor.start(group, WorkerSpec("slow", flaky.run))
        await wait_until(lambda: len(flaky.starts) == 4)
        await supervisor.stop("slow")
    assert hook.calls == []


async def test_health_turns_false_when_a_tracked_heartbeat_goes_stale() -> None:
    """healthy() is False once a tracked worker has not beaten within heartbeat_s, True again on a beat."""
    supervisor = Supervisor(Hook(), clock=SystemClock())
    beat = supervisor.heartbeat("killswitch")
    stuck = asyncio.Event()

    async def silent() -> None:
        await stuck.wait()

    async with asyncio.TaskGroup() as group:
        supervisor.start(group, WorkerSpec("killswitch", silent, heartbeat_s=0.05))
        supervisor.start(group, WorkerSpec("untracked", silent))
        assert supervisor.healthy()
        await wait_until(lambda: not supervisor.healthy())
        beat()
        assert supervisor.healthy()
        await supervisor.stop_all()


async def test_a_quiet_worker_that_says_it_is_alive_keeps_a_fresh_heartbeat() -> None:
    """A worker whose spec's ``alive`` holds (a stream waiting on its open connection) beats as of now
    without calling its heartbeat; once ``alive`` turns False its heartbeat goes stale as any other."""
    supervisor = Supervisor(Hook(), clock=SystemClock())
    connected = True
    stuck = asyncio.Event()

    async def waiting() -> None:
        await stuck.wait()

    async with asyncio.TaskGroup() as group:
        spec = WorkerSpec("updates", waiting, heartbeat_s=0.05, alive=lambda: connected)
        supervisor.start(group, spec)
        await wait_until(lambda: supervisor.status["updates"].running)
        started = supervisor.last_beat("updates")
        await wait_until(lambda: time.monotonic() - started > 0.1)
        assert supervisor.healthy() and supervisor.last_beat("updates") > started
        connected = False
        await wait_until(lambda: not supervisor.healthy())
        await supervisor.stop_all()


async def test_a_worker_that_finishes_is_not_unhealthy() -> None:
    """A worker that returns normally (not restart_on_exit) is finished, not stuck."""
    supervisor = Supervisor(Hook(), clock=SystemClock())

    async def once() -> None:
        return None

    async with asyncio.TaskGroup() as group:
        supervisor.start(group, WorkerSpec("once", once, heartbeat_s=0.01))
    supervisor.status["once"].last_beat = time.monotonic() - 1.0  # long past its heartbeat bound
    assert supervisor.status["once"].finished
    assert supervisor.healthy()


async def test_stop_cancels_one_worker_and_leaves_the_others_running() -> None:
    """stop(name) cancels that worker only; the rest keep running until the group ends."""
    supervisor = Supervisor(Hook(), clock=SystemClock())
    ticks = {"a": 0, "b": 0}

    def ticker(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            while True:
                ticks[name] += 1
                await asyncio.sleep(0.001)

        return run

    async with asyncio.TaskGroup() as group:
        supervisor.start(group, WorkerSpec("a", ticker("a")))
        supervisor.start(group, WorkerSpec("b", ticker("b")))
        await wait_until(lambda: ticks["a"] > 2 and ticks["b"] > 2)
        await supervisor.stop("a")
        assert not supervisor.status["a"].running
        stopped_at = ticks["a"]
        seen_b = ticks["b"]
        await wait_until(lambda: ticks["b"] > seen_b + 3)
        assert ticks["a"] == stopped_at
        assert supervisor.status["b"].running
        await supervisor.stop_all()
    assert not supervisor.status["b"].running


async def test_fatal_error_is_not_restarted_and_is_reported_once() -> None:
    """Wrong keys (fatal) end the worker without a restart, make the daemon unhealthy, call on_fatal."""
    fatal: list[tuple[str, str]] = []
    supervisor = Supervisor(
        Hook(), clock=SystemClock(), base_backoff_s=0.001, on_fatal=lambda n, e: fatal.append((n, str(e)))
    )
    starts = 0

    async def bad_keys() -> None:
        nonlocal starts
        starts += 1
        raise BrokerAuthError("the broker refused the API keys")

    with capture_logs() as logs:
        async with asyncio.TaskGroup() as group:
            supervisor.start(group, WorkerSpec("updates", bad_keys, restart_on_exit=True))
            await wait_until(lambda: bool(fatal))
    assert starts == 1 and fatal == [("updates", "the broker refused the API keys")]
    assert supervisor.fatal is not None and not supervisor.healthy()
    assert [e["event"] for e in logs if e["event"].startswith("worker_")] == ["worker_failed_fatally"]
