"""The daemon as a real process for the end-to-end tests: the same helpers the crash suite and
``make chaos`` use (``autoquant/chaos/processes.py``)."""

from autoquant.chaos.processes import DaemonProcess, wait_for
from tests.ledger_sql import query

__all__ = ["DaemonProcess", "query", "wait_for"]
