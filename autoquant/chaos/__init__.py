"""Chaos and crash tooling: kill the daemon at random or named moments, then check it converged.

``python -m autoquant.chaos`` (``make chaos``) is the driver (``autoquant/chaos/driver.py``);
``check_convergence`` is the one definition of "converged" that it and ``tests/crash/`` share.
"""

from autoquant.chaos.convergence import Convergence, check_convergence, freeze_exchange
from autoquant.chaos.processes import CHAOS_FAULTS, CHAOS_KEYS, DaemonProcess, ServerProcess

__all__ = [
    "CHAOS_FAULTS",
    "CHAOS_KEYS",
    "Convergence",
    "DaemonProcess",
    "ServerProcess",
    "check_convergence",
    "freeze_exchange",
]
