"""The clocks: the system's, a fake one that moves only when told, and a virtual one that jumps.

``VirtualClock`` follows trio's ``MockClock(autojump_threshold=…)``: it owns an asyncio event loop
whose ``time()`` is virtual. When the loop has nothing to run, nothing arrives on any file descriptor
for ``autojump_threshold_s`` of real time, and no job handed to a thread through
``loop.run_in_executor`` (``asyncio.to_thread``, the ledger's threads) is still running, time jumps
straight to the next scheduled timer: a jump never overtakes work in flight on another thread. Every
``asyncio.sleep``, ``asyncio.timeout`` and ``call_later`` on that loop then runs in virtual time, so the
whole daemon — bars, decisions, orders, fills, reconciliation, the kill switch — runs a trading day
without waiting for it. Only public asyncio APIs are used: ``SelectorEventLoop(selector=…)``,
``AbstractEventLoop.time`` and ``run_in_executor`` (overridden to count jobs in flight), and the
``selectors.BaseSelector`` interface.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import selectors
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, TypeVar

from autoquant.domain.values import from_ns, to_ns

_T = TypeVar("_T")

#: 2023-11-14T22:13:20Z: where fake and virtual clocks start unless told otherwise.
DEFAULT_START_NS = 1_700_000_000 * 1_000_000_000


class SystemClock:
    """Wall-clock time and asyncio's own sleeps and deadlines."""

    def now_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> Awaitable[None]:
        return asyncio.sleep(seconds)

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)


class FakeClock:
    """A clock whose time moves only when a test says so; its sleeps and deadlines are real."""

    def __init__(self, start_ns: int = DEFAULT_START_NS) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def monotonic(self) -> float:
        return self._now / 1e9

    def sleep(self, seconds: float) -> Awaitable[None]:
        return asyncio.sleep(seconds)

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)

    def advance(self, seconds: float) -> None:
        self._now += int(seconds * 1_000_000_000)

    def set(self, moment: datetime) -> None:
        self._now = to_ns(moment)

    def now(self) -> datetime:
        return from_ns(self._now)


class VirtualClock:
    """Time that jumps to the next due timer whenever the loop it drives is idle.

    Run code under it with ``asyncio.Runner(loop_factory=clock.new_event_loop)`` (or
    ``clock.run(coro)``). ``autojump_threshold_s`` is how long, in real seconds, the loop must see
    nothing to do before time jumps. Work handed to threads through ``run_in_executor`` or marked
    with ``hold_time`` (the ledger's commits) holds the clock still until it is answered; a caller
    cancelled while its thread still runs releases the hold early, so such a thread can be overtaken.
    """

    def __init__(self, start_ns: int = DEFAULT_START_NS, *, autojump_threshold_s: float = 0.001) -> None:
        self._start_ns = start_ns
        self.elapsed_s = 0.0
        self.autojump_threshold_s = autojump_threshold_s
        self.jumps = 0
        #: Jobs handed to threads through ``run_in_executor`` and not finished: no jump meanwhile.
        self.in_flight = 0
        #: Turns of the loop it drives (each polls the selector once): what a backtest's bar costs.
        self.turns = 0

    def now_ns(self) -> int:
        return self._start_ns + round(self.elapsed_s * 1e9)

    def monotonic(self) -> float:
        return self.elapsed_s

    def sleep(self, seconds: float) -> Awaitable[None]:
        return asyncio.sleep(seconds)

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward by hand (timers now due run on the loop's next turn)."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.elapsed_s += seconds

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return _VirtualTimeLoop(self)

    def run(self, main: Awaitable[Any]) -> Any:
        """Run ``main`` to completion on a new virtual-time loop."""

        async def whole() -> Any:
            return await main

        with asyncio.Runner(loop_factory=self.new_event_loop) as runner:
            return runner.run(whole())


def hold_time(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Mark work handed to another thread by hand (not through ``run_in_executor``): until the returned
    release is called, a virtual clock driving ``loop`` does not jump. A no-op on any other loop.

    The ledger's writer and reader threads call it per job, so virtual time never overtakes a commit.
    Release from the loop's own thread (a callback scheduled with ``call_soon_threadsafe``).
    """
    if not isinstance(loop, _VirtualTimeLoop):
        return _nothing_held
    clock = loop.virtual_clock
    clock.in_flight += 1
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            clock.in_flight -= 1

    return release


def _nothing_held() -> None:
    return None


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(selector=_JumpingSelector(clock))
        self.virtual_clock = clock

    def time(self) -> float:
        return self.virtual_clock.elapsed_s

    def run_in_executor(  # type: ignore[override]  # same call, spelled without TypeVarTuple
        self, executor: concurrent.futures.Executor | None, func: Callable[..., _T], *args: Any
    ) -> asyncio.Future[_T]:
        clock = self.virtual_clock
        clock.in_flight += 1
        try:
            future = super().run_in_executor(executor, func, *args)
        except BaseException:
            clock.in_flight -= 1
            raise

        def done(_: asyncio.Future[_T]) -> None:
            clock.in_flight -= 1

        future.add_done_callback(done)
        return future


#: asyncio's own: a timer is run once ``loop.time() + resolution`` has passed it.
_RESOLUTION_S = time.get_clock_info("monotonic").resolution


class _JumpingSelector(selectors.BaseSelector):
    """The platform's selector, except that an idle wait for a timer jumps the clock instead."""

    def __init__(self, clock: VirtualClock) -> None:
        self._inner = selectors.DefaultSelector()
        self._clock = clock

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self._clock.turns += 1
        if timeout is None or timeout < 0:
            # Nothing scheduled: wait for I/O, really.
            return self._inner.select(timeout)
        if timeout == 0:
            # Work ready now (just poll), or a timer due now that the loop will not run: past about
            # 52 days of virtual time, `time() + clock resolution (1 ns)` rounds back to `time()`, so
            # a timer due exactly now is never "ready" and the loop would poll forever. Nudging the
            # clock by one representable step (a few ns) when a poll finds nothing lets it run.
            ready = self._inner.select(0)
            elapsed = self._clock.elapsed_s
            if not ready and not self._clock.in_flight and elapsed + _RESOLUTION_S == elapsed:
                self._clock.elapsed_s = math.nextafter(elapsed, math.inf)
            return ready
        if self._clock.in_flight:
            # A thread is working for the loop: its result arrives through the self-pipe. Wait for it
            # (in real time) rather than jump past it.
            return self._inner.select(None)
        ready = self._inner.select(min(timeout, self._clock.autojump_threshold_s))
        if ready:
            return ready
        # Idle: no callback ready, nothing arrived within the threshold. The loop would now wait
        # `timeout` for its next timer; jump there instead, and a few representable steps past it: a
        # deadline computed by other float arithmetic than the timer's (`start + delay` against
        # `now + (deadline - now)`) may lie an ulp or two later, and landing exactly on the timer
        # would wake code that checks `monotonic() >= deadline` a hair short of it, to re-arm an
        # already-due timer for ever. (Tens of nanoseconds at most over a year of virtual time.)
        before = self._clock.elapsed_s
        target = before + timeout
        self._clock.elapsed_s = max(target + 4 * math.ulp(target), math.nextafter(before, math.inf))
        self._clock.jumps += 1
        return []

    def close(self) -> None:
        self._inner.close()

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()
