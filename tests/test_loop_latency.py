"""The interpreter settings the daemon and the bench run under (``prefer_loop_latency``)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc, sys, time
from autoquant.runtime.daemon import SWITCH_INTERVAL_S, prefer_loop_latency
prefer_loop_latency()
assert sys.getswitchinterval() == SWITCH_INTERVAL_S, sys.getswitchinterval()
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()
assert gc.isenabled()
print("frozen", gc.get_freeze_count())
"""


def test_the_heap_loaded_at_start_is_frozen_out_of_full_collections() -> None:
    """After prefer_loop_latency the imported modules' objects are frozen (a full GC no longer walks
    them) while the collector stays on for what the daemon allocates, and the switch interval is set."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("frozen ")
