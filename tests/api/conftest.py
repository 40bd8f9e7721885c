"""A real daemon subprocess on the embedded paper exchange with ``[api] listen`` set: the API runs as the
daemon's child process, and the tests speak real HTTP and websockets to it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.daemon_harness import DaemonProcess, wait_for

TOKEN = "test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiDaemon:
    def __init__(self, daemon: DaemonProcess, port: int) -> None:
        self.daemon = daemon
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=self.headers, timeout=10.0)

    def get(self, path: str, **params: object) -> httpx.Response:
        with self.client() as client:
            return client.get(path, params=params)  # type: ignore[arg-type]

    def post(self, path: str, body: object) -> httpx.Response:
        with self.client() as client:
            return client.post(path, json=body)


def api_section(port: int, extra: str = "") -> str:
    return f'\n[api]\nlisten = "127.0.0.1:{port}"\n{extra}'


def start_api_daemon(root: Path, config_extra: str = "") -> ApiDaemon:
    port = free_port()
    daemon = DaemonProcess(root, extra_env={"AUTOQUANT_API_TOKEN": TOKEN})
    daemon.config.write_text(daemon.config.read_text() + api_section(port) + config_extra)
    since = daemon.start()
    api = ApiDaemon(daemon, port)

    def serving() -> bool:
        if not daemon.alive():
            raise RuntimeError(f"daemon exited: {daemon.tail()}")
        try:
            return httpx.get(f"{api.base}/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(lambda: daemon.ready_since(since), 60, f"the daemon's start-up\n{daemon.tail()}")
    wait_for(serving, 30, "the API to answer /health")
    return api


@pytest.fixture(scope="session")
def api_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiDaemon]:
    api = start_api_daemon(tmp_path_factory.mktemp("api"))
    yield api
    api.daemon.terminate()


def write_api_config(root: Path, port: int, extra: str = "") -> Path:
    path = root / "autoquant.toml"
    writes = "" if "writes_per_minute" in extra else "writes_per_minute = 3\n"
    path.write_text(
        f'[ledger]\npath = "{root}/ledger.db"\n[logging]\npath = "{root}/autoquant.log"\n'
        f'[api]\nlisten = "127.0.0.1:{port}"\n{writes}{extra}'
    )
    return path


@pytest.fixture
def lone_api_process(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    config = write_api_config(tmp_path, port, getattr(request, "param", ""))
    migrated = subprocess.run(
        [sys.executable, "-m", "autoquant", "--config", str(config), "migrate"],
        capture_output=True,
        check=False,
    )
    assert migrated.returncode == 0
    with (tmp_path / "api.err").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "autoquant", "--config", str(config), "api"],
            env={**os.environ, "AUTOQUANT_API_TOKEN": TOKEN},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, (tmp_path / "api.err").read_text()
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 30, "autoquant api to answer")
    yield base, process
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def lone_api(lone_api_process: tuple[str, subprocess.Popen[bytes]]) -> str:
    return lone_api_process[0]
