"""Issue 10 items 1 and 2: `autoquant status` of a real daemon says what is true (broker down, workers)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoquant.chaos.processes import ServerProcess
from tests.e2e.daemon_harness import DaemonProcess, wait_for
from tests.operator.helpers import log_events, status_json, status_when

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def paper_daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(tmp_path / "daemon")
    yield daemon
    daemon.kill()


def test_broker_down_is_said_and_its_return_reconciled_at_once(tmp_path: Path) -> None:
    """Paper-server SIGKILLed: status says unreachable, unhealthy; back: reconnect logged, reconciled soon."""
    server = ServerProcess(tmp_path / "server", port=free_port()).start()
    daemon = DaemonProcess(tmp_path / "daemon", url=server.url)
    daemon.config.write_text(daemon.config.read_text() + "[daemon]\nbroker_unreachable_s = 3\n")
    try:
        started = daemon.start()
        wait_for(lambda: daemon.ready_or_exited(started), 60, "the start-up reconciliation")
        up = status_when(daemon, lambda s: s["daemon"]["broker"], 20, "a status with the broker")
        assert up["daemon"]["healthy"] is True, up["daemon"]
        assert up["daemon"]["broker"]["reachable"] is True
        assert daemon.cli("status").stdout.count("broker:          reachable") == 1

        assert server.process is not None
        server.process.kill()
        server.process.wait()
        server.process = None
        failed = status_when(
            daemon,
            lambda s: s["daemon"]["healthy"] is False,
            20,
            "status to call the daemon unhealthy (the reconciliation after the disconnect fails)",
        )
        assert any("reconciliation failed" in r for r in failed["daemon"]["unhealthy"]), failed["daemon"]
        down = status_when(
            daemon,
            lambda s: any("broker unreachable" in r for r in s["daemon"]["unhealthy"]),
            30,
            "status to say the broker has been unreachable past the bound",
        )
        assert down["daemon"]["healthy"] is False
        broker = down["daemon"]["broker"]
        assert broker["reachable"] is False and broker["since"] and broker["last_error"], broker
        human = daemon.cli("status").stdout
        (Path(daemon.root) / "status-broker-down.txt").write_text(human)
        assert "healthy: no (broker unreachable for" in human, human
        assert "broker:          UNREACHABLE: REST since" in human, human

        back_ns = time.time_ns()
        server.start()
        reconciled = wait_for(
            lambda: any(
                run.trigger != "startup" and run.started_ns >= back_ns
                for run in daemon_reconciliations(daemon, back_ns)
            ),
            15,
            "a reconciliation after the broker came back",
        )
        assert reconciled
        healthy = status_when(daemon, lambda s: s["daemon"]["healthy"] is True, 20, "healthy again")
        assert healthy["daemon"]["broker"]["reachable"] is True
        events = log_events(daemon.root / "autoquant.log")
        assert "broker_unreachable" in events and "broker_reachable_again" in events
        assert "update_stream_reconnected" in events
        assert daemon.terminate() == 0, daemon.tail()
    finally:
        daemon.kill()
        server.stop()


def daemon_reconciliations(daemon: DaemonProcess, since_ns: int) -> list[Any]:
    from autoquant.chaos.processes import read_ledger

    return read_ledger(daemon.ledger, lambda ledger: ledger.reconciliations_since(since_ns)) or []


def test_workers_as_they_are(paper_daemon: DaemonProcess) -> None:
    """Heartbeats move, no watchdog outside systemd, ready line has the real state, stopped is stopped."""
    daemon = paper_daemon
    seed_account_incident(daemon)
    started = daemon.start()
    wait_for(lambda: daemon.ready_or_exited(started), 60, "the start-up reconciliation")
    first = wait_for(lambda: status_json(daemon)["daemon"]["workers"], 20, "workers in the status")
    names = {w["name"] for w in first}
    assert "watchdog" not in names, names
    assert {"reconciliation", "status", "killswitch", "execution"} <= names

    def moved_since(beats: dict[str, str]) -> dict[str, Any] | None:
        now = {w["name"]: w for w in status_json(daemon)["daemon"]["workers"]}
        # "updates" too: no order moves here, but its stream is open, and a quiet stream is alive.
        beating = ("reconciliation", "status", "killswitch", "looplag", "manual_orders", "updates")
        ok = all(now[n]["last_heartbeat"] > beats[n] for n in beating)
        return now if ok else None

    def heartbeats(workers: Any) -> dict[str, str]:
        return {w["name"]: w["last_heartbeat"] for w in workers}

    workers = wait_for(lambda: moved_since(heartbeats(first)), 20, "every polling worker's heartbeat to move")
    # Twice: a worker's first beat as it starts is not the proof; the quiet stream's must keep moving.
    workers = wait_for(lambda: moved_since(heartbeats(workers.values())), 20, "the heartbeats to move again")
    assert all(w["state"] == "running" for w in workers.values() if w["name"] != "marketdata")
    human = daemon.cli("status").stdout
    assert human.startswith("daemon:          running (pid "), human
    ready = [e for e in log_records(daemon) if e.get("event") == "daemon_ready"]
    assert ready and ready[-1]["trading_state"] == "halted", ready

    assert daemon.terminate() == 0, daemon.tail()
    after = status_json(daemon)["daemon"]
    assert after["running"] is False and "stopped at" in after["note"], after
    assert {w["state"] for w in after["workers"]} == {"stopped"}
    assert "running" not in daemon.cli("status").stdout.split("trading state")[0].replace("not running", "")


def seed_account_incident(daemon: DaemonProcess) -> None:
    """An open account-wide incident in the ledger: the kill switch halts on it at start."""
    import asyncio

    from autoquant.ledger import Ledger

    async def seed() -> None:
        ledger = await Ledger.open(daemon.ledger)
        try:
            await ledger.open_incident(
                kind="cash_mismatch",
                subject="seeded",
                scope="account",
                message="seeded by the test",
                action="look",
                details={},
                local_ts_ns=time.time_ns(),
            )
        finally:
            await ledger.close()

    asyncio.run(seed())


def log_records(daemon: DaemonProcess) -> list[dict[str, Any]]:
    path = daemon.root / "autoquant.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
