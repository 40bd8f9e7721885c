"""Alerts from a real daemon: a halt reaches a local webhook within seconds with the command to run, a
hung webhook delays neither the other channel nor trading, and every delivery is in the ledger."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from autoquant.ledger import LedgerReader
from tests.api.conftest import start_api_daemon
from tests.api.webhook import DeadEnd, Receiver
from tests.e2e.daemon_harness import wait_for

pytestmark = pytest.mark.slow


def alerts_of(ledger: Path) -> list[tuple[str, str, list[tuple[str, str, int]]]]:
    async def read() -> list[tuple[str, str, list[tuple[str, str, int]]]]:
        async with await LedgerReader.open(ledger) as reader:
            return [(a.event, a.body, deliveries) for a, deliveries in await reader.alerts()]

    return asyncio.run(read())


def test_halt_alerts_the_webhook_and_a_hung_one_delays_nothing(tmp_path: Path) -> None:
    """A halt reaches the live webhook within seconds naming `autoquant resume`; the hung channel fails in
    its own thread (recorded), while the daemon keeps deciding and its loop lag stays small."""
    with Receiver() as live, DeadEnd() as dead:
        extra = (
            "\n[alerts]\ntimeout_s = 1.5\nattempts = 2\nbackoff_s = 0.2\n"
            f'heartbeat_url = "http://127.0.0.1:{live.port}/ping"\nheartbeat_s = 0.5\n'
            f'[[alerts.channels]]\nurl = "json://127.0.0.1:{dead.port}/hung"\n'
            f'[[alerts.channels]]\nurl = "json://127.0.0.1:{live.port}/hook"\nmin_severity = "warning"\n'
        )
        started = time.monotonic()
        api = start_api_daemon(tmp_path, extra)
        start_s = time.monotonic() - started
        daemon = api.daemon
        try:
            wait_for(lambda: any("ping" in body for _, body in live.received), 10, "a heartbeat ping")
            # The daemon's pace on this machine now, with nothing hung: the window below is held to it.
            baseline_start = daemon.decisions_since(0)
            time.sleep(2.0)  # a measuring window, not a wait for a condition
            before = daemon.decisions_since(0)
            baseline = before - baseline_start
            asked = time.monotonic()
            result = daemon.cli("halt", "--reason", "alert test")
            assert result.returncode == 0, result.stderr

            def halt_alert() -> float | None:
                for at, body in live.received:
                    if "HALTED" in str(body.get("title", "")):
                        return at
                return None

            arrived = wait_for(halt_alert, 10, "the halt alert at the webhook")
            latency_s = arrived - asked
            message = next(b for _, b in live.received if "HALTED" in str(b.get("title", "")))["message"]
            assert "alert test" in message
            assert 'autoquant resume --reason "…"' in message and "autoquant incidents --open" in message
            # While the hung channel holds its thread, the daemon goes on deciding at its pace.
            window_start = daemon.decisions_since(0)
            time.sleep(2.0)  # a measuring window, not a wait for a condition
            decided = daemon.decisions_since(0) - window_start
            status = json.loads(daemon.ledger.with_name("ledger.db.status.json").read_text())
            lag_s = status["metrics"]["loop_lag_s"]

            def outcomes() -> dict[str, str] | None:
                rows = [r for r in alerts_of(daemon.ledger) if r[0] == "halted"]
                found = {channel: outcome for channel, outcome, _ in (rows[0][2] if rows else [])}
                return found if len(found) == 2 else None

            recorded = wait_for(outcomes, 15, "both deliveries recorded")
        finally:
            daemon.terminate()
        print(
            f"\nstart-up {start_s:.2f} s with a hung channel; halt -> webhook {latency_s * 1000:.0f} ms; "
            f"{decided} decisions in the 2 s window while the hung channel retried ({baseline} in one "
            f"before the halt); loop lag {lag_s}"
        )
        assert latency_s < 5.0
        # 2 strategies on 0.1 s bars: ~40 a 2 s window on a quiet machine; a loaded one is slower in both
        # windows alike, while a hung channel that held up the loop would stop the second one.
        assert baseline >= 10 and decided >= baseline // 2, (baseline, decided)
        assert lag_s is not None and lag_s < 0.25
        assert recorded[f"json://127.0.0.1:{live.port}"] == "delivered"
        assert recorded[f"json://127.0.0.1:{dead.port}"] == "failed"
