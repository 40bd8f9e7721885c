"""The daemon as a real process on the embedded paper exchange: trades, obeys pause, drains, resumes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.daemon_harness import DaemonProcess, query, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path)
    yield process
    process.kill()


def orders_after(ledger: Path, ns: int) -> int:
    return int(query(ledger, "SELECT count(*) FROM orders WHERE local_ts_ns > ?", (ns,))[0][0])


def test_trades_pauses_resumes_drains_and_restarts_clean(daemon: DaemonProcess) -> None:
    """make-run behaviour: fills within seconds; pause stops new orders within a second; resume
    restores them; SIGTERM exits 0 within 10 s; the next start reconciles clean and carries on."""
    exercise_operator_cycle(daemon)


def exercise_operator_cycle(daemon: DaemonProcess) -> None:
    """Trade, pause, resume, drain, restart clean: the operator's whole cycle on one daemon."""
    daemon.start()
    wait_for(lambda: query(daemon.ledger, "SELECT 1 FROM fills"), 60, "a first fill", poll_s=0.1)

    paused = daemon.cli("pause", "--reason", "test pause")
    assert paused.returncode == 0, paused.stderr
    pause_ns = time.time_ns()
    time.sleep(3.0)  # observe a window of trading time: nothing may be reserved after the first second
    assert orders_after(daemon.ledger, pause_ns + 1_000_000_000) == 0
    decisions = query(daemon.ledger, "SELECT count(*) FROM decisions WHERE local_ts_ns > ?", (pause_ns,))[0][
        0
    ]
    assert decisions > 0, "strategies keep deciding (and recording) while paused"

    canceled = daemon.cli("cancel", "--all", "--reason", "test cancel")
    assert canceled.returncode == 0, canceled.stderr
    wait_for(
        lambda: query(daemon.ledger, "SELECT 1 FROM cancel_outcomes"), 5, "the daemon to carry out the cancel"
    )

    resumed = daemon.cli("resume", "--reason", "test resume")
    assert resumed.returncode == 0, resumed.stderr
    resume_ns = time.time_ns()
    wait_for(lambda: orders_after(daemon.ledger, resume_ns), 60, "an order after resume", poll_s=0.1)

    started = time.monotonic()
    assert daemon.terminate() == 0, daemon.tail()
    assert time.monotonic() - started < 10

    unresolved = query(
        daemon.ledger,
        "SELECT count(*) FROM orders o WHERE (SELECT status_after FROM order_events e"
        " WHERE e.client_order_id = o.client_order_id ORDER BY seq DESC LIMIT 1) IS NULL",
    )[0][0]
    fills_before = query(daemon.ledger, "SELECT count(*) FROM fills")[0][0]

    restart_ns = time.time_ns()
    daemon.start()
    wait_for(
        lambda: query(
            daemon.ledger,
            "SELECT clean FROM reconciliations WHERE trigger = 'startup' AND started_ns > ?",
            (restart_ns,),
        ),
        30,
        "the start-up reconciliation after restart",
    )
    startup = query(
        daemon.ledger,
        "SELECT clean, summary_json FROM reconciliations WHERE trigger = 'startup' AND started_ns > ?",
        (restart_ns,),
    )[0]
    assert startup[0] == 1, (
        f"start-up reconciliation not clean: {startup[1]}; unresolved before: {unresolved}"
    )
    wait_for(
        lambda: query(daemon.ledger, "SELECT 1 FROM decisions WHERE local_ts_ns > ?", (restart_ns,)),
        30,
        "decisions after restart",
    )
    assert query(daemon.ledger, "SELECT count(*) FROM fills")[0][0] >= fills_before

    status = daemon.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["trading_state"] == "active"
    assert daemon.terminate() == 0


def test_second_daemon_on_the_same_ledger_is_refused(daemon: DaemonProcess) -> None:
    """Two daemons on one ledger: the second exits non-zero with one line naming the lock holder."""
    daemon.start()
    wait_for(lambda: daemon.ready_since(0), 60, "the first daemon to be ready")
    second = daemon.cli("run")
    assert second.returncode != 0
    assert "held by a running daemon" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert daemon.terminate() == 0
