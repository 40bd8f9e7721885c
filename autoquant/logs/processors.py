"""The structlog processors: the short chain on the calling side, and the console rendering.

The **calling chain** runs where the event is logged (the event loop, or a thread from
``asyncio.to_thread``) and only *collects*, as cheaply as it can: the bound context, the level, the
time as integer nanoseconds and the traceback (``sys.exc_info`` belongs to the calling thread, so it
cannot be read later). Its last step hands the event dict, as is, to the queue logger
(``autoquant.logs.records``). Level filtering happens before any of it, in structlog's filtering
bound logger, so a debug line at level info costs one method call.

Rendering happens elsewhere, off the caller: JSON in ``autoquant.logs.lines``, the console form in
``autoquant.logs.console``.
"""

from __future__ import annotations

import contextvars
import sys
import time
import traceback
from typing import Any, Final

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

#: How a bound logger's method names map to a line's ``level``.
_LEVELS: Final = {"warn": "warning", "exception": "error", "fatal": "critical", "msg": "info", "err": "error"}
_PREFIX: Final = structlog.contextvars.STRUCTLOG_KEY_PREFIX
_PREFIX_LEN: Final = len(_PREFIX)


def render_exception(event_dict: EventDict) -> None:
    """Turn ``exc_info`` into a ``traceback`` string while the exception is still at hand."""
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif not isinstance(exc_info, tuple):
        exc_info = sys.exc_info()
    if exc_info[0] is not None:
        event_dict["traceback"] = "".join(traceback.format_exception(*exc_info)).rstrip("\n")


def collect(
    _: WrappedLogger, method_name: str, event_dict: EventDict
) -> tuple[tuple[EventDict], dict[str, Any]]:
    """The whole calling chain in one step, since every processor call costs the loop.

    What ``merge_contextvars``, ``add_log_level`` and a timestamper would do, plus the traceback;
    then the dict itself goes to the queue logger's method (structlog calls ``method(*args,
    **kwargs)`` with what the last processor returns). The time is integer UTC nanoseconds; the
    writer renders it as text (``lines.TimestampText``).
    """
    for var, value in contextvars.copy_context().items():
        name = var.name
        if name[:_PREFIX_LEN] == _PREFIX and value is not Ellipsis:
            event_dict.setdefault(name[_PREFIX_LEN:], value)
    event_dict["level"] = _LEVELS.get(method_name, method_name)
    event_dict["timestamp"] = time.time_ns()
    if "exc_info" in event_dict:
        render_exception(event_dict)
    return (event_dict,), {}


def calling_chain() -> list[Processor]:
    """The processors structlog runs in the calling thread: collect, then hand over, no copies."""
    return [collect]
