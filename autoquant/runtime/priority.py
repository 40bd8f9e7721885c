"""Yield the CPU to trading: the operator API's process asks the kernel to run it only after the daemon.

Linux keeps scheduling settings per thread (``setpriority`` and ``sched_setscheduler`` on pid 0 change the
calling thread only), and threads inherit them when they are created. ``yield_cpu`` applies them to every
thread the process already has (listed in ``/proc/self/task``) and so to every thread created after.

Three levers, all unprivileged (a process may always lower its own priority):

- ``nice``: a smaller share of the CPU when it is contended (nice 10 weighs about a tenth of nice 0);
- the autogroup: with ``kernel.sched_autogroup_enabled`` (the default of most desktop and many server
  kernels), the scheduler first shares the CPU fairly between *sessions* and only then between the
  tasks of one session by their nice. A child in its parent's session is charged to the parent's
  group: its nice then only orders it against the trading loop *within* the daemon's share, and
  every CPU second it takes is one the daemon's session no longer has against the rest of the host
  (measured: a niced API and its clients in the bench's session cost trading as much as un-niced ones
  on a busy host). So the process leaves for a session of its own (``setsid``, possible when it is not
  already a process-group leader, as a child of the daemon is not) and gives that session's group the
  same nice (``/proc/self/autogroup``). Under systemd with the cpu controller, tasks live in cgroups
  and autogroups do not apply; then ``nice`` alone orders the API after the daemon in its unit.
- ``idle``: the ``SCHED_IDLE`` policy, under which a thread runs only on CPU time no normal thread wants,
  and a trading thread that wakes takes the core at once instead of waiting out the API's time slice.
  That wake-up is what the loop's lag and ``tick_to_submit`` measure. The cost: on a host whose CPUs are
  kept busy by other work at normal priority, the API answers slowly or not at all until they idle.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

TASKS = Path("/proc/self/task")
AUTOGROUP = Path("/proc/self/autogroup")


@dataclass(frozen=True)
class Yielded:
    """What was applied, for the start-up log line."""

    threads: int
    nice: int
    idle: bool
    #: Whether the process now has an autogroup of its own at ``nice``.
    autogroup: bool = False


def _thread_ids() -> list[int]:
    try:
        return sorted(int(entry.name) for entry in TASKS.iterdir() if entry.name.isdigit())
    except OSError:
        return [0]  # not Linux: the calling thread (which is, there, the process)


def own_autogroup(nice: int) -> bool:
    """Move this process into a new session whose scheduler group weighs ``nice``; False when the
    kernel has no autogroups or the process leads its process group (run from a shell: its session's
    group is the shell's, which the process must not renice)."""
    if not nice or not AUTOGROUP.exists() or not hasattr(os, "setsid"):
        return False
    try:
        os.setsid()
    except OSError:
        return False
    for _ in range(20):
        try:
            AUTOGROUP.write_text(str(nice))
            return True
        except BlockingIOError:  # EAGAIN: the kernel takes one autogroup change per 100 ms, host-wide
            time.sleep(0.05)  # start-up only, before the process serves anything
        except OSError:
            return False
    return False


def yield_cpu(nice: int, idle: bool) -> Yielded:
    """Lower this process's CPU priority, every thread of it: ``nice`` added, its own autogroup at
    ``nice``, ``SCHED_IDLE`` if ``idle``."""
    grouped = own_autogroup(nice)
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
    return Yielded(threads=len(threads), nice=nice, idle=applied_idle, autogroup=grouped)


def current_policy(tid: int = 0) -> tuple[int, bool]:
    """(nice, whether SCHED_IDLE) of thread ``tid`` (0: the calling thread)."""
    nice = os.getpriority(os.PRIO_PROCESS, tid) if hasattr(os, "getpriority") else 0
    idle = hasattr(os, "SCHED_IDLE") and os.sched_getscheduler(tid) == os.SCHED_IDLE
    return nice, idle


__all__ = ["Yielded", "current_policy", "own_autogroup", "yield_cpu"]
