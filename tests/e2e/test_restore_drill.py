"""The restore drill with real processes: a backup taken while trading, a lost disk, a restore, and a
daemon that converges with the exchange that outlived it (paper-server, its state file kept)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoquant.chaos import CHAOS_KEYS, DaemonProcess, ServerProcess, check_convergence
from autoquant.ledger.backup import SIDE_FILES
from tests.e2e.daemon_harness import query, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "server") as running:
        yield running


@pytest.fixture
def daemon(tmp_path: Path, server: ServerProcess) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path / "daemon", server.url)
    yield process
    process.kill()


def count(ledger: Path, sql: str, params: tuple[int, ...] = ()) -> int:
    rows = query(ledger, sql, params)
    return int(rows[0][0]) if rows else 0


def filled_orders_after(ledger: Path, ns: int) -> int:
    return count(
        ledger,
        "SELECT count(DISTINCT o.client_order_id) FROM orders o JOIN fills f"
        " ON f.client_order_id = o.client_order_id WHERE o.local_ts_ns > ?",
        (ns,),
    )


def coids(ledger: Path, where: str = "") -> set[str]:
    return {str(row[0]) for row in query(ledger, "SELECT client_order_id FROM orders" + where)}


def trading_state(daemon: DaemonProcess) -> str:
    status = daemon.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    return str(json.loads(status.stdout)["trading_state"])


def lose_the_disk(ledger: Path) -> None:
    for suffix in ("", *SIDE_FILES):
        Path(f"{ledger}{suffix}").unlink(missing_ok=True)


def test_backup_sigkill_lost_ledger_restore_converges(
    daemon: DaemonProcess, server: ServerProcess, tmp_path: Path
) -> None:
    """Backup mid-trading, more orders, SIGKILL, ledger deleted, restore, restart: every exchange order
    in the ledger (the later ones adopted), every fill once, positions equal, nothing sent twice, and
    trading waits for `resume`."""
    started = daemon.start()
    wait_for(lambda: daemon.ready_or_exited(started), 60, "the daemon to be ready")
    assert daemon.alive(), daemon.tail()
    wait_for(lambda: filled_orders_after(daemon.ledger, 0) >= 2, 60, "two filled orders", poll_s=0.1)

    backup = tmp_path / "backups" / "ledger-1.db"
    backup.parent.mkdir()
    taken = daemon.cli("backup", str(backup), "--json")
    assert taken.returncode == 0, taken.stderr + daemon.tail()
    backup_ns = time.time_ns()
    wait_for(
        lambda: filled_orders_after(daemon.ledger, backup_ns) >= 3, 60, "three orders after the backup", 0.1
    )
    assert daemon.kill() == -9
    lost = coids(daemon.ledger)
    acknowledged = coids(
        daemon.ledger,
        " WHERE client_order_id IN (SELECT client_order_id FROM order_events"
        " WHERE broker_order_id IS NOT NULL)",
    )
    in_backup = coids(backup)
    assert len(lost - in_backup) >= 3
    lose_the_disk(daemon.ledger)

    restored = daemon.cli("restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert "HALTED" in restored.stdout and "autoquant resume" in restored.stdout

    restarted = daemon.start()
    wait_for(lambda: daemon.ready_or_exited(restarted), 60, "the start-up reconciliation after the restore")
    assert daemon.alive(), daemon.tail()
    adopted = {str(row[0]) for row in query(daemon.ledger, "SELECT client_order_id FROM restore_adoptions")}
    # Every order the lost ledger knew the exchange had is adopted; nothing the backup already had is.
    assert acknowledged - in_backup <= adopted <= lost - in_backup, daemon.tail()
    assert coids(daemon.ledger, " WHERE decision_id IS NULL") == adopted
    incidents = daemon.cli("incidents", "--open", "--json")
    assert "ledger_restored" in incidents.stdout and "orders_adopted_after_restore" in incidents.stdout
    assert "autoquant resume" in incidents.stdout

    # Trading waits for the operator: decisions go on, no order is reserved while HALTED.
    wait_for(lambda: daemon.decisions_since(restarted) >= 6, 60, "decisions after the restart")
    assert trading_state(daemon) == "halted"
    assert count(daemon.ledger, "SELECT count(*) FROM orders WHERE local_ts_ns > ?", (restarted,)) == 0

    assert daemon.resolve_open_incidents("restore drill: adopted orders checked against the exchange")
    resumed = daemon.cli("resume", "--reason", "restore drill checked")
    assert resumed.returncode == 0, resumed.stderr
    resume_ns = time.time_ns()
    wait_for(lambda: filled_orders_after(daemon.ledger, resume_ns) >= 1, 60, "an order after resume", 0.1)
    assert daemon.terminate() == 0, daemon.tail()

    reconciled = daemon.reconcile()
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    found = check_convergence(daemon.ledger, server.url, CHAOS_KEYS)
    assert found.converged, found.describe() + "\n" + daemon.tail()
    ledger_orders = count(daemon.ledger, "SELECT count(*) FROM orders")
    reached = count(
        daemon.ledger,
        "SELECT count(*) FROM orders o WHERE EXISTS (SELECT 1 FROM order_events e"
        " WHERE e.client_order_id = o.client_order_id AND e.broker_order_id IS NOT NULL)",
    )
    assert found.exchange_orders == reached <= ledger_orders
    assert count(daemon.ledger, "SELECT count(*) FROM backups") == 0, "the backup's own record is not in it"
    assert count(daemon.ledger, "SELECT count(*) FROM restores") == 1
