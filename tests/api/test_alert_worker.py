"""The alert worker on a real ledger with a fake clock: repeats within the window are folded, a daily
summary goes out once a day, a broker silent past its bound is one alert, and all of it is recorded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from autoquant.alerts.settings import AlertSettings, ChannelSettings
from autoquant.alerts.worker import AlertWorker
from autoquant.clocks import FakeClock
from autoquant.domain.controls import Control, ControlKind
from autoquant.ledger import Ledger
from autoquant.ledger.records import ReconciliationRun
from tests.api.webhook import Receiver


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not hold in time")
        await asyncio.sleep(0.02)  # polling a condition under a deadline


async def test_folding_daily_summary_and_broker_silence(tmp_path: Path) -> None:
    """Two halts within the window: one delivery, one 'folded'; after the window, delivered again."""
    clock = FakeClock()
    with Receiver() as hook:
        settings = AlertSettings(
            channels=[ChannelSettings(url=f"json://127.0.0.1:{hook.port}/hook")],
            dedup_window_s=60,
            daily_summary_utc="00:00",
            timeout_s=2,
        )
        async with await Ledger.open(tmp_path / "l.db") as ledger:
            worker = AlertWorker(ledger, settings, clock, unreachable_after_s=90)
            await worker.prepare()
            worker.start_delivery()
            try:

                async def halt_and_resume() -> None:
                    for kind in (ControlKind.HALT, ControlKind.RESUME):
                        await ledger.append_control(
                            Control(kind=kind, reason="test", actor="kill-switch", local_ts_ns=clock.now_ns())
                        )
                    await worker.poll()

                await ledger.record_reconciliation(
                    ReconciliationRun(
                        trigger="startup",
                        clean=True,
                        summary={},
                        started_ns=clock.now_ns(),
                        finished_ns=clock.now_ns(),
                    )
                )
                await halt_and_resume()
                await _until(lambda: len(hook.received) == 2)  # the halt and the day's summary
                await halt_and_resume()
                clock.advance(61)
                await halt_and_resume()  # past the window, and the broker silent for 61 s (bound 90)
                await _until(lambda: len(hook.received) == 3)
                clock.advance(30)
                await worker.poll()  # silent for 91 s: one alert
                await worker.poll()  # still silent: no second one
                await _until(lambda: len(hook.received) == 4)

                def recorded() -> bool:
                    return len(outcomes) == 5 and all(o for _, o in outcomes)

                outcomes: list[tuple[str, list[str]]] = []
                for _ in range(200):
                    outcomes = [(a.event, [o for _, o, _ in d]) for a, d in await ledger.alerts()]
                    if recorded():
                        break
                    await asyncio.sleep(0.02)  # the delivery thread records its outcome through the loop
            finally:
                worker.stop_delivery()
            await ledger.close()
    assert outcomes == [
        ("halted", ["delivered"]),
        ("daily_summary", ["delivered"]),
        ("halted", ["folded"]),
        ("halted", ["delivered"]),
        ("broker_unreachable", ["delivered"]),
    ]
    titles = [str(body.get("title")) for _, body in hook.received]
    assert titles[0].startswith("autoquant HALTED") and "daily summary" in titles[1]
    assert titles[3] == "autoquant: broker unreachable"
