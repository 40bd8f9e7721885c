"""Who hears about the paper exchange's changes: update queues and wake-up watchers.

Two kinds of listener, for two needs:

- **subscribers** (the trade-updates stream, ``PaperBroker.updates()``, tests) get every
  ``OrderUpdate`` on their own unbounded ``asyncio.Queue``, in the order the exchange committed them;
- **watchers** (the pump in ``PaperBroker.run``) are plain callbacks, called after anything that may
  move ``next_due_ns``, so the pump can wake early instead of sleeping past new work.

The exchange publishes only after a change is durable, so a listener never sees an update that a
crash could take back. Synchronous, single-threaded: used from the exchange's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from autoquant.domain.broker import OrderUpdate


class UpdateFanout:
    """The exchange's listeners, and the two ways to reach them: ``publish`` and ``poke``."""

    def __init__(self) -> None:
        self._subscribers: list[asyncio.Queue[OrderUpdate]] = []
        self._watchers: list[Callable[[], None]] = []

    def subscribe(self) -> asyncio.Queue[OrderUpdate]:
        """A queue that receives every update from now on."""
        queue: asyncio.Queue[OrderUpdate] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[OrderUpdate]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    def add_watcher(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` at every ``poke()``."""
        self._watchers.append(callback)

    def remove_watcher(self, callback: Callable[[], None]) -> None:
        if callback in self._watchers:
            self._watchers.remove(callback)

    def publish(self, updates: Iterable[OrderUpdate]) -> None:
        """Put each update on every subscriber's queue, in order."""
        for update in updates:
            for queue in self._subscribers:
                queue.put_nowait(update)

    def poke(self) -> None:
        """Call every watcher (one may remove itself while being called)."""
        for callback in list(self._watchers):
            callback()

    def clear(self) -> None:
        """Forget every listener (the exchange is closing)."""
        self._subscribers.clear()
        self._watchers.clear()
