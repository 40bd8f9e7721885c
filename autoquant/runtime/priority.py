"""Yield the CPU to trading: the operator API's process asks the kernel to run it only after the daemon.

Linux keeps scheduling settings per thread (``setpriority`` and ``sched_setscheduler`` on pid 0 change the
calling thread only), and threads inherit them when they are created. ``yield_cpu`` applies them to every
thread the process already has (listed in ``/proc/self/task``) and so to every thread created after.

Two levers, both unprivileged (a process may always lower its own priority):

- ``nice``: a smaller share of the CPU when it is contended (nice 10 weighs about a tenth of nice 0);
- ``idle``: the ``SCHED_IDLE`` policy, under which a thread runs only on CPU time no normal thread wants,
  and a trading thread that wakes takes the core at once instead of waiting out the API's time slice.
  That wake-up is what the loop's lag and ``tick_to_submit`` measure. The cost: on a host whose CPUs are
  kept busy by other work at normal priority, the API answers slowly or not at all until they idle.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

TASKS = Path("/proc/self/task")


@dataclass(frozen=True)
class Yielded:
    """What was applied, for the start-up log line."""

    threads: int
    nice: int
    idle: bool


def _thread_ids() -> list[int]:
    try:
        return sorted(int(entry.name) for entry in TASKS.iterdir() if entry.name.isdigit())
    except OSError:
        return [0]  # not Linux: the calling thread (which is, there, the process)


def yield_cpu(nice: int, idle: bool) -> Yielded:
    """Lower this process's CPU priority, every thread of it: ``nice`` added, ``SCHED_IDLE`` if ``idle``."""
    threads = _thread_ids()
    applied_idle = False
    for tid in threads:
        if nice and hasattr(os, "setpriority"):
            with contextlib.suppress(OSError):  # a thread that has just exited
                current = os.getpriority(os.PRIO_PROCESS, tid)
                os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
        if idle and hasattr(os, "SCHED_IDLE"):
            with contextlib.suppress(OSError):
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
                applied_idle = True
    return Yielded(threads=len(threads), nice=nice, idle=applied_idle)


def current_policy(tid: int = 0) -> tuple[int, bool]:
    """(nice, whether SCHED_IDLE) of thread ``tid`` (0: the calling thread)."""
    nice = os.getpriority(os.PRIO_PROCESS, tid) if hasattr(os, "getpriority") else 0
    idle = hasattr(os, "SCHED_IDLE") and os.sched_getscheduler(tid) == os.SCHED_IDLE
    return nice, idle


__all__ = ["Yielded", "current_policy", "yield_cpu"]
