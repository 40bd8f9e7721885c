"""Kill the daemon by SIGKILL at each named crash point; the restart must converge to the exchange.

Each case is its own world: a paper-server process (the exchange outlives the daemon) and a fresh
ledger. The daemon trades against it through the real Alpaca adapter, dies at the point
(``AUTOQUANT_CRASH_AT``), restarts without it, reconciles, decides a few more bars and trades again,
drains on SIGTERM; then the exchange's open orders are canceled (``freeze_exchange``: resting orders would
fill during the check), ``autoquant reconcile`` and ``check_convergence`` (the check ``make chaos`` makes).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import autoquant
from autoquant.chaos import CHAOS_KEYS, DaemonProcess, ServerProcess, check_convergence, freeze_exchange
from autoquant.chaos.processes import wait_for
from tests.ledger_sql import query

pytestmark = pytest.mark.slow

#: Where each case dies: ``point:N`` is the Nth pass, chosen so that the daemon has traded a little.
CRASHES = [
    "after_decision:25",
    "after_reservation:1",
    "after_submit:2",
    "after_ack:2",
    "before_fill_stored:2",
    "during_reconciliation:2",
    "during_shutdown",
]


def placed(point: str) -> bool:
    """Whether some module calls ``crashpoint("<point>")`` (a point nobody placed can never fire)."""
    pattern = re.compile(rf"crashpoint\(\s*[\"']{point}[\"']")
    package = Path(autoquant.__file__).parent
    return any(pattern.search(path.read_text()) for path in package.rglob("*.py"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "server") as running:
        yield running


@pytest.fixture
def daemon(tmp_path: Path, server: ServerProcess) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path / "daemon", server.url, mixed_orders=True)
    yield process
    process.kill()


def crash(daemon: DaemonProcess, spec: str) -> int:
    """Run the daemon with ``AUTOQUANT_CRASH_AT=spec`` until it dies; return its exit code."""
    started = daemon.start(crash_at=spec)
    if spec.startswith("during_shutdown"):
        # The point is on the drain path: trade until something was reserved, then ask it to stop.
        wait_for(lambda: daemon.ready_or_exited(started), 60, "the first run to be ready")
        wait_for(
            lambda: query(daemon.ledger, "SELECT 1 FROM orders WHERE local_ts_ns > ?", (started,)),
            60,
            "a first order",
        )
        return daemon.terminate()
    try:
        return daemon.wait_exit(timeout_s=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{spec} never fired within 60 s\n{daemon.tail()}")


@pytest.mark.parametrize("spec", CRASHES)
def test_restart_after_sigkill_converges(daemon: DaemonProcess, server: ServerProcess, spec: str) -> None:
    """SIGKILL at the crash point, restart, drain: no orphan, no double order, fills and positions
    equal to the exchange's, nothing left RESERVED or UNKNOWN."""
    point = spec.partition(":")[0]
    if not placed(point):
        pytest.skip(f"crash point {point} is not placed in the code yet")

    assert crash(daemon, spec) == -9, daemon.tail()
    assert f"crashpoint {point}: SIGKILL" in daemon.output.read_text(), daemon.tail()

    restarted = daemon.start()
    wait_for(lambda: daemon.ready_or_exited(restarted), 60, "the start-up reconciliation after the crash")
    assert daemon.alive(), daemon.tail()
    wait_for(lambda: daemon.decisions_since(restarted) >= 6, 60, "decisions after the restart")
    wait_for(
        lambda: query(daemon.ledger, "SELECT 1 FROM orders WHERE local_ts_ns > ?", (restarted,)),
        60,
        "trading to resume: an order reserved after the restart",
    )
    assert daemon.terminate() == 0, daemon.tail()

    freeze_exchange(server.url, CHAOS_KEYS)  # resting limit and stop orders would fill during the check
    reconciled = daemon.reconcile()
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr

    found = check_convergence(daemon.ledger, server.url, CHAOS_KEYS)
    assert found.converged, found.describe() + "\n" + daemon.tail()
    assert found.exchange_orders > 0, "the restarted daemon's order reached the exchange"
