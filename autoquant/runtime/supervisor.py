"""The supervisor: owns every worker task, restarts a crashed one with backoff, tracks heartbeats.

Workers are coroutines it runs in one ``TaskGroup`` (no fire-and-forget tasks). A worker that raises
is logged with its traceback and restarted after a growing delay; ``max_crashes`` crashes within
``window_s`` call ``on_repeated_crash`` (the daemon halts trading there, while reconciliation, order
updates and cancels keep running). A fatal error (``errors.is_fatal``: wrong keys, a corrupt or
too-new ledger, an invalid config) is not worth a restart: the supervisor records it, logs it and calls
``on_fatal`` (the daemon stops and says why). ``stop(name)`` cancels one worker; leaving the group
cancels all. Heartbeats and backoff run on the injected clock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from autoquant.domain.clock import Clock
from autoquant.errors import LedgerFull, is_fatal
from autoquant.logs import bind_worker

log = structlog.get_logger("autoquant.supervisor")

#: How often a worker stopped by a full ledger disk tries again.
DISK_RETRY_S = 2.0


@dataclass
class WorkerSpec:
    name: str
    run: Callable[[], Awaitable[None]]
    #: Seconds without a heartbeat after which the worker counts as stuck (None = not tracked).
    heartbeat_s: float | None = None
    #: Restart when it returns normally (a loop that should never end).
    restart_on_exit: bool = False
    #: For a worker that waits on something rather than polling (the order-update stream on its open
    #: connection): True while it is waiting as it should, and its heartbeat then counts as now. A
    #: quiet stream is not a stuck worker; a dropped one stops saying so.
    alive: Callable[[], bool] | None = None


@dataclass
class WorkerStatus:
    crashes: deque[float] = field(default_factory=deque)
    restarts: int = 0
    last_beat: float = 0.0
    running: bool = False
    finished: bool = False
    #: Why the worker is waiting instead of running (the ledger's disk is full), None otherwise.
    waiting: str | None = None


class Supervisor:
    def __init__(
        self,
        on_repeated_crash: Callable[[str, BaseException], Awaitable[None]],
        *,
        clock: Clock,
        on_fatal: Callable[[str, BaseException], None] | None = None,
        max_crashes: int = 3,
        window_s: float = 60.0,
        base_backoff_s: float = 0.2,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.on_repeated_crash = on_repeated_crash
        self.clock = clock
        self.on_fatal = on_fatal
        #: The first fatal error a worker raised, and which worker: the daemon's reason to stop.
        self.fatal: tuple[str, BaseException] | None = None
        self.max_crashes = max_crashes
        self.window_s = window_s
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.status: dict[str, WorkerStatus] = {}
        self.specs: dict[str, WorkerSpec] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None

    def heartbeat(self, name: str) -> Callable[[], None]:
        status = self.status.setdefault(name, WorkerStatus(last_beat=self.clock.monotonic()))
        clock = self.clock

        def beat() -> None:
            status.last_beat = clock.monotonic()

        return beat

    def last_beat(self, name: str) -> float:
        """When the worker last showed it was working (the clock's monotonic seconds): its latest
        heartbeat, or now while it is running and its spec's ``alive`` says it waits as it should."""
        status = self.status[name]
        spec = self.specs.get(name)
        if spec is not None and spec.alive is not None and status.running and spec.alive():
            return self.clock.monotonic()
        return status.last_beat

    def healthy(self) -> bool:
        """Every tracked worker is running and has beaten within its bound."""
        if self.fatal is not None:
            return False
        now = self.clock.monotonic()
        for name, spec in self.specs.items():
            status = self.status.get(name)
            if status is None or status.finished:
                continue
            if spec.heartbeat_s is not None and now - self.last_beat(name) > spec.heartbeat_s:
                return False
        return True

    def start(self, group: asyncio.TaskGroup, spec: WorkerSpec) -> None:
        self.specs[spec.name] = spec
        self.status.setdefault(spec.name, WorkerStatus(last_beat=self.clock.monotonic()))
        self._tasks[spec.name] = group.create_task(self._supervise(spec), name=spec.name)

    async def stop(self, name: str) -> None:
        task = self._tasks.get(name)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})

    async def stop_all(self) -> None:
        for name in list(self._tasks):
            await self.stop(name)

    async def _supervise(self, spec: WorkerSpec) -> None:
        status = self.status[spec.name]
        bind_worker(spec.name)
        while True:
            status.running = True
            status.last_beat = self.clock.monotonic()
            try:
                await spec.run()
                status.waiting = None
            except asyncio.CancelledError:
                status.running = False
                raise
            except LedgerFull as error:
                # Not a crash: no restart cures a full disk, and none makes it worse. Wait for room.
                status.running = False
                if status.waiting is None:
                    log.error("worker_waiting_for_disk_space", waiting_worker=spec.name, error=str(error))
                status.waiting = str(error)
                await self.clock.sleep(DISK_RETRY_S)  # a retry period, not a wait-for
                continue
            except Exception as error:
                status.running = False
                if is_fatal(error):
                    status.finished = True
                    log.error("worker_failed_fatally", failed_worker=spec.name, error=str(error))
                    if self.fatal is None:
                        self.fatal = (spec.name, error)
                        if self.on_fatal is not None:
                            self.on_fatal(spec.name, error)
                    return
                now = self.clock.monotonic()
                status.crashes.append(now)
                while status.crashes and now - status.crashes[0] > self.window_s:
                    status.crashes.popleft()
                log.exception("worker_crashed", crashed_worker=spec.name, crashes=len(status.crashes))
                if len(status.crashes) >= self.max_crashes:
                    await self.on_repeated_crash(spec.name, error)
                delay = min(self.max_backoff_s, self.base_backoff_s * 2 ** (len(status.crashes) - 1))
                await self.clock.sleep(delay)  # backoff before the restart, not a wait-for
                status.restarts += 1
                log.info("worker_restarted", restarted_worker=spec.name, restarts=status.restarts)
                continue
            status.running = False
            if not spec.restart_on_exit:
                status.finished = True
                log.info("worker_finished", finished_worker=spec.name)
                return
