"""Structured logging: JSON lines to a rotated file and to stderr (journald), never blocking the loop.

How a line is made. The calling code (the event loop, or a thread from ``asyncio.to_thread``) runs a
short structlog chain that only *collects* (``processors``) and puts the event dict on a bounded
queue (``records``); a full queue drops the record and counts it. One writer thread (``writer``)
takes the queue in batches and pickles each batch into a pipe to the renderer process
(``renderer``), which renders each record once (``lines``: the JSON shape and key order) and writes
the size-rotated file and stderr (``sinks``), off the daemon's GIL. Should that process not start or
die, the writer thread renders and writes itself. ``configure`` wires it up and undoes it;
``binding`` binds the worker and order ids to lines; ``settings`` is ``[logging]``.

This package sits low in the layers: it imports only the stdlib, structlog and pydantic. The names
below are imported on first use, so that the renderer process, which imports
``autoquant.logs.renderer`` and so this package, starts without structlog and pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autoquant.logs.binding import bind_worker, bound, get_logger
    from autoquant.logs.configure import DEFAULT_QUEUE_SIZE, NOISY_LOGGERS, LoggingHandle, configure_logging
    from autoquant.logs.lines import DEFAULT_WORKER, ID_KEYS, LEADING_KEYS, utc_timestamp
    from autoquant.logs.settings import LoggingSettings

#: Where each re-exported name lives.
_HOMES = {
    "bind_worker": "binding",
    "bound": "binding",
    "get_logger": "binding",
    "DEFAULT_QUEUE_SIZE": "configure",
    "NOISY_LOGGERS": "configure",
    "LoggingHandle": "configure",
    "configure_logging": "configure",
    "DEFAULT_WORKER": "lines",
    "ID_KEYS": "lines",
    "LEADING_KEYS": "lines",
    "utc_timestamp": "lines",
    "LoggingSettings": "settings",
}

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_WORKER",
    "ID_KEYS",
    "LEADING_KEYS",
    "NOISY_LOGGERS",
    "LoggingHandle",
    "LoggingSettings",
    "bind_worker",
    "bound",
    "configure_logging",
    "get_logger",
    "utc_timestamp",
]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
