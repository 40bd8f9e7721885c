"""The shape of a log line: its leading keys, its timestamp, and how values and whole lines are rendered.

Rendering runs on the writer thread (``autoquant.logs.writer``), once per record for every JSON sink.
Values are made plain here: Decimals as exact strings (never floats), models as their JSON form.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Final

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

EventDict = dict[str, Any]


def utc_timestamp(moment: datetime) -> str:
    """A line's ``timestamp``: UTC with microseconds and a ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TimestampText:
    """Renders UTC nanoseconds as a line's ``timestamp``, reusing the text of the current second.

    The caller stamps a record with ``time.time_ns()`` (an int, nearly free); the writer turns it into
    text here, where a strftime per line would be most of the cost of a timestamp.
    """

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, ns: int) -> str:
        second, rest = divmod(ns, 1_000_000_000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        return f"{self._prefix}{rest // 1000:06d}Z"


def plain(value: object) -> object:
    """What a value becomes in a JSON line: Decimals as exact strings, models as their JSON form."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    model_dump = getattr(value, "model_dump", None)  # a pydantic model (not imported: see renderer)
    if callable(model_dump):
        return model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)


def ordered(event: EventDict, timestamp: Callable[[int], str]) -> EventDict:
    """The line's dict: the timestamp as text, ``worker`` defaulted, the leading keys first."""
    stamp = event.get("timestamp")
    if type(stamp) is int:
        event["timestamp"] = timestamp(stamp)
    event.setdefault("worker", DEFAULT_WORKER)
    head: EventDict = {key: event.pop(key) for key in LEADING_KEYS if key in event}
    head.update(event)
    return head


#: One JSON object, no newline; non-ASCII kept as is (the file is UTF-8).
encode_json: Final[Callable[[object], str]] = json.JSONEncoder(default=plain, ensure_ascii=False).encode


def render_lines(events: list[EventDict]) -> list[str]:
    """Each (ordered) event as a JSON line; one that cannot be rendered does not lose its batch-mates."""
    try:
        return list(map(encode_json, events))
    except Exception:
        return [_render_one(event) for event in events]


def _render_one(event: EventDict) -> str:
    try:
        return encode_json(event)
    except Exception as error:
        kept = ("timestamp", "level", "event", "worker")
        fallback: EventDict = {key: event[key] for key in kept if key in event}
        fallback["render_error"] = repr(error)
        return encode_json(fallback)
