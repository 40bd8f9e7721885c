"""Binding ids to log lines, and getting a logger.

Use: ``bind_worker("execution")`` at the top of each worker task; ``with bound(decision_id=...,
client_order_id=...):`` around the code that handles one order; ``log = get_logger(__name__)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import structlog
from structlog.typing import FilteringBoundLogger


def bind_worker(name: str) -> None:
    """Bind ``worker=name`` for the rest of the current task.

    Call it first thing inside the worker's coroutine: an asyncio task starts with a copy of its
    creator's context, so a binding made here stays inside this worker (and the tasks it creates).
    """
    structlog.contextvars.bind_contextvars(worker=name)


@contextlib.contextmanager
def bound(**ids: object) -> Iterator[None]:
    """Bind ids (``decision_id=``, ``client_order_id=``, …) to every line logged inside the block.

    ``None`` values are skipped, so ``bound(broker_order_id=order.broker_order_id)`` is safe before
    the broker has answered. Previous values are restored on exit, also across ``await``.
    """
    present = {key: value for key, value in ids.items() if value is not None}
    with structlog.contextvars.bound_contextvars(**present):
        yield


def get_logger(name: str) -> FilteringBoundLogger:
    """A structlog logger named ``name`` (``log.info("order_submitted", qty=qty)``)."""
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger
