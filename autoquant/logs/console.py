"""The console form of a line, for a person at a terminal: structlog's ``ConsoleRenderer``."""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import structlog

from autoquant.logs.lines import EventDict


def _without_decimals(value: object) -> object:
    """For the console renderer, which would otherwise print ``Decimal('1.5')``."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_without_decimals(item) for item in value]
    if isinstance(value, dict):
        return {key: _without_decimals(item) for key, item in value.items()}
    return value


_CONSOLE: Final = structlog.dev.ConsoleRenderer(colors=False, sort_keys=False)


def render_console(event_dict: EventDict) -> str:
    """A line for a person at a terminal (the dict already ordered), the traceback below it."""
    event = {key: _without_decimals(value) for key, value in event_dict.items()}
    if "traceback" in event:
        event["exception"] = event.pop("traceback")
    return str(_CONSOLE(None, "info", event))
