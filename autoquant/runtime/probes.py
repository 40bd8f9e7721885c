"""What only the running daemon can measure, published in its status side file for ``/metrics``: the
event loop's lag (how late a short timer fires) and the ledger's recent commit time."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

from autoquant.domain.clock import Clock
from autoquant.ledger import Ledger

#: The lag probe's timer; its lateness is the loop's lag.
PROBE_S = 0.1
#: The gauge shows the worst lag of the last this-many probes (about 10 s).
WINDOW = 100


class LoopLag:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.samples: collections.deque[float] = collections.deque(maxlen=WINDOW)
        #: The supervisor's heartbeat for this worker (set when it is started).
        self.heartbeat: Callable[[], None] = lambda: None

    async def run(self) -> None:
        while True:
            self.heartbeat()
            before = self.clock.monotonic()
            await self.clock.sleep(PROBE_S)  # the probe's own timer: its lateness is what is measured
            self.samples.append(max(0.0, self.clock.monotonic() - before - PROBE_S))

    def worst_s(self) -> float | None:
        return max(self.samples) if self.samples else None


def status_metrics(lag: LoopLag, ledger: Ledger) -> dict[str, Any]:
    return {"loop_lag_s": lag.worst_s(), "ledger_commit_p99_s": ledger.commit_p99_s()}
