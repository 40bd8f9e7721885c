"""The daemon with the real Alpaca adapter (alpaca-py) against paper-server in another process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers.server_harness import TEST_KEYS, paper_server_process
from tests.e2e.daemon_harness import DaemonProcess, write_config
from tests.e2e.test_daemon_paper import exercise_operator_cycle

pytestmark = pytest.mark.slow


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    with paper_server_process(server_dir) as (_, url):
        config = write_config(tmp_path, url=url)
        process = DaemonProcess(
            config,
            tmp_path,
            env={"APCA_API_KEY_ID": TEST_KEYS.key_id, "APCA_API_SECRET_KEY": TEST_KEYS.secret_key},
        )
        yield process
        process.kill()


def test_operator_cycle_through_the_alpaca_adapter(daemon: DaemonProcess) -> None:
    """Against paper-server through alpaca-py: trades, pause/resume, SIGTERM exit 0, restart clean."""
    exercise_operator_cycle(daemon)
