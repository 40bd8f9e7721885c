"""The structlog processors that turn an event into a log line, and the key order every line follows.

Two chains, split by thread (see ``autoquant.logs`` for why there is a writer thread):

- the **calling chain** runs where the event is logged (the event loop, or a thread from
  ``asyncio.to_thread``) and only *collects*: the bound context, the level, the timestamp and the
  traceback (``sys.exc_info`` belongs to the calling thread, so it cannot be read later), then wraps the
  event dict for the stdlib ``ProcessorFormatter``;
- the **formatters** run on the writer thread and render: JSON for the file and journald, console
  rendering for a TTY. Lines from stdlib loggers (asyncio, uvicorn, alpaca-py…) first go through a
  pre-chain that gives them the same keys, including the ids bound where they were logged.

Values are made plain here too: Decimals as exact strings (never floats), models as their JSON form.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import sys
import traceback
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import PurePath
from typing import Final

import structlog
from pydantic import BaseModel
from structlog.typing import EventDict, Processor, WrappedLogger

#: Keys that lead every line, in this order; the rest follow as logged.
LEADING_KEYS: Final = (
    "timestamp",
    "level",
    "event",
    "worker",
    "decision_id",
    "client_order_id",
    "broker_order_id",
)
#: The ids an order's lines are bound to (and that ``autoquant logs --id`` matches exactly).
ID_KEYS: Final = ("decision_id", "client_order_id", "broker_order_id")
#: ``worker`` on lines logged outside any worker task (start-up, shutdown, the supervisor itself).
DEFAULT_WORKER: Final = "main"
#: The ``LogRecord`` attribute that carries a stdlib record's bound context to the writer thread.
CONTEXT_ATTR: Final = "autoquant_context"


def utc_timestamp(moment: datetime) -> str:
    """A line's ``timestamp``: UTC with microseconds and a ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the calling chain ---------------------------------------------------------------------------


def _add_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict["timestamp"] = utc_timestamp(datetime.now(UTC))
    return event_dict


def _render_exception(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Turn ``exc_info`` into a ``traceback`` string while the exception is still at hand."""
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif not isinstance(exc_info, tuple):
        exc_info = sys.exc_info()
    if exc_info[0] is not None:
        event_dict["traceback"] = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    return event_dict


def calling_chain() -> list[Processor]:
    """The processors structlog runs in the calling thread: collect, then hand over to the formatter."""
    return [
        structlog.stdlib.filter_by_level,
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        _add_timestamp,
        _render_exception,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]


# --- the writer thread's formatters --------------------------------------------------------------


def _add_record_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    record: logging.LogRecord = event_dict["_record"]
    event_dict["timestamp"] = utc_timestamp(datetime.fromtimestamp(record.created, UTC))
    return event_dict


def _add_record_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A stdlib record carries the ids bound where it was logged (captured by the queue handler)."""
    record: logging.LogRecord = event_dict["_record"]
    event_dict["logger"] = record.name
    for key, value in getattr(record, CONTEXT_ATTR, {}).items():
        event_dict.setdefault(key, value)
    return event_dict


def _finish(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Default the worker, put the leading keys first."""
    event_dict.setdefault("worker", DEFAULT_WORKER)
    ordered = {key: event_dict.pop(key) for key in LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _plain(value: object) -> object:
    """What a value becomes in a log line: Decimals as exact strings, models as their JSON form."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)


def _without_decimals(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_without_decimals(item) for item in value]
    if isinstance(value, dict):
        return {key: _without_decimals(item) for key, item in value.items()}
    return value


def _plain_decimals(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """For the console renderer, which would otherwise print ``Decimal('1.5')``."""
    return {key: _without_decimals(value) for key, value in event_dict.items()}


def _traceback_as_exception(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The console renderer prints an ``exception`` string below the line."""
    if "traceback" in event_dict:
        event_dict["exception"] = event_dict.pop("traceback")
    return event_dict


def json_formatter() -> structlog.stdlib.ProcessorFormatter:
    """Renders a record as one JSON object: the file's format, and stderr's under journald."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_FOREIGN_PRE_CHAIN,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _finish,
            structlog.processors.JSONRenderer(default=_plain, ensure_ascii=False),
        ],
    )


def console_formatter() -> structlog.stdlib.ProcessorFormatter:
    """Renders a record for a person at a terminal, the traceback below the line."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_FOREIGN_PRE_CHAIN,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _finish,
            _plain_decimals,
            _traceback_as_exception,
            structlog.dev.ConsoleRenderer(colors=False, sort_keys=False),
        ],
    )


_FOREIGN_PRE_CHAIN: Final[list[Processor]] = [
    _add_record_timestamp,
    structlog.stdlib.add_log_level,
    _add_record_context,
    _render_exception,
]
