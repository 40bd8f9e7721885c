"""The clocks: a virtual clock that jumps idle time without overtaking work, and the fake and system ones."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

from autoquant.clocks import FakeClock, SystemClock, VirtualClock, hold_time
from autoquant.domain.clock import Clock

START_NS = 1_772_461_800 * 1_000_000_000


def test_every_clock_is_a_clock() -> None:
    """System, fake and virtual clocks all satisfy the domain's Clock port (checked by mypy too)."""
    clocks: list[Clock] = [SystemClock(), FakeClock(), VirtualClock()]
    assert all(clock.now_ns() > 0 for clock in clocks)


def test_an_hour_of_virtual_sleep_takes_no_real_hour() -> None:
    """sleep(3600) on the virtual loop returns at once in real time, with the clock an hour on."""
    clock = VirtualClock(START_NS)
    started = time.monotonic()
    clock.run(clock.sleep(3600))
    assert time.monotonic() - started < 2.0
    assert clock.monotonic() == pytest.approx(3600)
    assert clock.now_ns() == START_NS + 3600 * 1_000_000_000


def test_timers_fire_in_virtual_order_at_their_virtual_times() -> None:
    """Interleaved sleeps wake in deadline order, each at exactly its virtual time."""
    clock = VirtualClock(START_NS)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    async def main() -> None:
        await asyncio.gather(sleeper("c", 30), sleeper("a", 5), sleeper("b", 12.5))

    clock.run(main())
    assert [name for name, _ in woke] == ["a", "b", "c"]
    assert [at for _, at in woke] == pytest.approx([5, 12.5, 30])


def test_a_deadline_expires_in_virtual_time() -> None:
    """clock.timeout(60) around a longer wait raises TimeoutError at virtual 60 s."""
    clock = VirtualClock(START_NS)

    async def main() -> float:
        with pytest.raises(TimeoutError):
            async with clock.timeout(60):
                await clock.sleep(600)
        return clock.monotonic()

    assert clock.run(main()) == pytest.approx(60)


def test_work_on_a_thread_is_never_overtaken_by_a_jump() -> None:
    """While a to_thread job runs (50 ms of real time), the clock does not jump to the next timer."""
    clock = VirtualClock(START_NS, autojump_threshold_s=0.001)
    seen: list[float] = []

    async def worker() -> None:
        await asyncio.to_thread(time.sleep, 0.05)
        seen.append(clock.monotonic())

    async def main() -> None:
        await asyncio.gather(worker(), clock.sleep(10))

    clock.run(main())
    assert seen == [0.0], "the thread's result arrived before any virtual time passed"
    assert clock.monotonic() == pytest.approx(10)


def test_fake_clock_moves_only_when_told() -> None:
    """FakeClock's now and monotonic move by advance() only."""
    clock = FakeClock(START_NS)
    before = clock.monotonic()
    clock.advance(2.5)
    assert clock.now_ns() == START_NS + 2_500_000_000
    assert clock.monotonic() - before == pytest.approx(2.5)


def test_virtual_clock_refuses_to_go_back() -> None:
    """advance() with a negative span is refused."""
    with pytest.raises(ValueError, match="does not go back"):
        VirtualClock().advance(-1)


def test_work_held_by_hand_is_never_overtaken_by_a_jump() -> None:
    """A thread job marked with hold_time (the ledger's way) keeps the clock still until released."""
    clock = VirtualClock(START_NS, autojump_threshold_s=0.001)
    seen: list[float] = []

    async def worker() -> None:
        loop = asyncio.get_running_loop()
        release = hold_time(loop)
        done = loop.create_future()

        def finished() -> None:
            release()
            done.set_result(None)

        def job() -> None:
            time.sleep(0.05)
            loop.call_soon_threadsafe(finished)

        threading.Thread(target=job).start()
        await done
        seen.append(clock.monotonic())

    async def main() -> None:
        await asyncio.gather(worker(), clock.sleep(10))

    clock.run(main())
    assert seen == [0.0]


def test_hold_time_is_a_no_op_on_an_ordinary_loop() -> None:
    """On a plain asyncio loop hold_time returns a release that does nothing."""

    async def main() -> None:
        hold_time(asyncio.get_running_loop())()

    asyncio.run(main())


def _deadline_misses(start_s: float, delays: list[float]) -> list[tuple[float, float]]:
    """Under a VirtualClock started ``start_s`` in, set a deadline ``delay`` ahead, sleep a third of it,
    then wait out the rest with a timeout set for the deadline; return every (now, deadline) where the
    timeout fired before the clock reached it."""
    clock = VirtualClock(START_NS)
    clock.advance(start_s)
    misses: list[tuple[float, float]] = []

    async def main() -> None:
        never = asyncio.Event()
        for delay in delays:
            deadline = clock.monotonic() + delay
            await clock.sleep(delay / 3)
            with contextlib.suppress(TimeoutError):
                async with clock.timeout(deadline - clock.monotonic()):
                    await never.wait()
            if clock.monotonic() < deadline:
                misses.append((clock.monotonic(), deadline))

    clock.run(main())
    return misses


def test_a_timeout_set_for_a_deadline_wakes_with_the_deadline_reached() -> None:
    """Float rounding in a jump never leaves the clock a hair short of the deadline its timer was set for
    (the loops that re-armed such an already-due timer spun for ever, with virtual time stuck)."""
    # Each pair was found to land a jump one ulp short of the deadline before the fix.
    missed_before = [(0.825, 25.375), (0.581, 52.886), (0.445, 6.033), (0.907, 13.377), (0.063, 52.204)]
    for start_s, delay in missed_before:
        assert _deadline_misses(start_s, [delay]) == []
    delays = [0.1, 0.3, 0.7, 1 / 3, 0.05, 2.2, 0.001, 59.9, 0.25, 1e-4] * 20
    for start_s in (0.0, 0.1, 1234.567, 86_400.3, 3_000_000.7):
        assert _deadline_misses(start_s, delays) == []


def test_the_virtual_clock_counts_the_turns_of_its_loop() -> None:
    """Each turn of the loop it drives polls its selector once: 100 yields take at least 100 turns."""
    clock = VirtualClock(autojump_threshold_s=0.0)

    async def main() -> None:
        for _ in range(100):
            await asyncio.sleep(0)

    clock.run(main())
    assert 100 <= clock.turns <= 110
