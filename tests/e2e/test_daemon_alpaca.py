"""The daemon with the real Alpaca adapter (alpaca-py) against paper-server in another process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autoquant.chaos.processes import ServerProcess
from tests.e2e.daemon_harness import DaemonProcess
from tests.e2e.test_daemon_paper import exercise_operator_cycle

pytestmark = pytest.mark.slow


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    with ServerProcess(tmp_path / "server") as server:
        process = DaemonProcess(tmp_path / "daemon", url=server.url)
        yield process
        process.kill()


def test_operator_cycle_through_the_alpaca_adapter(daemon: DaemonProcess) -> None:
    """Against paper-server through alpaca-py: trades, pause/resume, SIGTERM exit 0, restart clean."""
    exercise_operator_cycle(daemon)
