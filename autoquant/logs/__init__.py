"""Structured logging: JSON lines to a rotated file and to stderr (journald), never blocking the loop.

How a line is made. The calling code (the event loop, or a thread from ``asyncio.to_thread``) runs a
short structlog chain that only *collects* (``processors``) and puts the event dict on a bounded
queue (``records``); a full queue drops the record and counts it. One writer thread (``writer``)
takes the queue in batches, renders each record once (``lines``: the JSON shape and key order) and
writes the batch to the size-rotated file and to stderr (``sinks``). ``configure`` wires it up and
undoes it; ``binding`` binds the worker and order ids to lines; ``settings`` is ``[logging]``.

This package sits low in the layers: it imports only the stdlib, structlog and pydantic.
"""

from autoquant.logs.binding import bind_worker, bound, get_logger
from autoquant.logs.configure import DEFAULT_QUEUE_SIZE, NOISY_LOGGERS, LoggingHandle, configure_logging
from autoquant.logs.lines import DEFAULT_WORKER, ID_KEYS, LEADING_KEYS, utc_timestamp
from autoquant.logs.settings import LoggingSettings

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
