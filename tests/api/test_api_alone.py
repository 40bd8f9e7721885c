"""`autoquant api` on its own: it answers from the ledger while no daemon runs, refuses a start without a
token, limits writes, and the settings refuse a non-loopback address unless allowed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from autoquant.chaos.processes import wait_for
from autoquant.errors import ConfigError
from autoquant.runtime import config as config_module
from tests.api.conftest import TOKEN, free_port, write_api_config


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
@pytest.mark.parametrize("lone_api_process", ["nice = 12\nidle = true\n"], indirect=True)
def test_every_thread_of_the_api_yields_the_cpu_to_trading(
    lone_api_process: tuple[str, subprocess.Popen[bytes]],
) -> None:
    """With [api] idle and nice set, every thread of the API process runs under SCHED_IDLE at nice 12, and
    (where the kernel groups by session) the process leads a session whose scheduler group is at nice 12."""
    _, process = lone_api_process
    if Path("/proc/self/autogroup").exists():
        assert os.getsid(process.pid) == process.pid, "the API did not leave its parent's session"
        assert Path(f"/proc/{process.pid}/autogroup").read_text().split()[-1] == "12"
    threads = [int(entry.name) for entry in Path(f"/proc/{process.pid}/task").iterdir()]
    assert len(threads) > 1
    for tid in threads:
        assert os.sched_getscheduler(tid) == os.SCHED_IDLE, f"thread {tid} is not SCHED_IDLE"
        assert os.getpriority(os.PRIO_PROCESS, tid) >= 12, f"thread {tid} is not niced"


def test_the_api_answers_while_the_daemon_is_down_and_limits_writes(lone_api: str) -> None:
    """Without a daemon the status says so, a pause is recorded, and the 4th write in a minute is 429."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    status = httpx.get(f"{lone_api}/api/v1/status", headers=headers).json()
    assert status["daemon"]["running"] is False and status["trading_state"] == "active"
    for n in range(3):
        paused = httpx.post(f"{lone_api}/api/v1/pause", headers=headers, json={"reason": f"p{n}"})
        assert paused.status_code == 200, paused.text
    limited = httpx.post(f"{lone_api}/api/v1/pause", headers=headers, json={"reason": "p4"})
    assert limited.status_code == 429 and "writes in a minute" in limited.json()["error"]
    assert [
        p["reason"] for p in httpx.get(f"{lone_api}/api/v1/status", headers=headers).json()["paused"]
    ] == ["p2"]


def test_a_start_without_a_token_is_refused_in_one_line(tmp_path: Path) -> None:
    """`autoquant api` with the token variable unset exits 2 naming the variable to set."""
    config = write_api_config(tmp_path, free_port())
    env = {k: v for k, v in os.environ.items() if k != "AUTOQUANT_API_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "autoquant", "--config", str(config), "api"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "AUTOQUANT_API_TOKEN" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_remote_address_needs_allow_remote() -> None:
    """listen on a non-loopback address is refused by name unless allow_remote = true."""
    with pytest.raises(ConfigError, match="not a loopback address"):
        config_module.parse({"api": {"listen": "0.0.0.0:8780"}})
    assert config_module.parse({"api": {"listen": "0.0.0.0:8780", "allow_remote": True}}).api.allow_remote
    with pytest.raises(ConfigError, match="HOST:PORT"):
        config_module.parse({"api": {"listen": "8780"}})


def test_the_daemon_refuses_to_start_an_api_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """[api] listen without a long enough token fails the daemon's start (before anything trades)."""
    from autoquant.runtime.api_process import check_api_settings

    config = config_module.parse({"api": {"listen": "127.0.0.1:8780"}})
    monkeypatch.delenv("AUTOQUANT_API_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="AUTOQUANT_API_TOKEN is empty"):
        check_api_settings(config)
    monkeypatch.setenv("AUTOQUANT_API_TOKEN", "short")
    with pytest.raises(ConfigError, match="shorter than 16"):
        check_api_settings(config)
    monkeypatch.setenv("AUTOQUANT_API_TOKEN", TOKEN)
    check_api_settings(config)


#: A stand-in daemon: starts `autoquant api` as its child, as runtime/api_process.py does, prints its pid.
_PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-m", "autoquant", "--config", sys.argv[1], "api"],
                         env={**os.environ, "AUTOQUANT_API_PARENT_PID": str(os.getpid())},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(child.pid, flush=True)
time.sleep(600)
"""


def test_a_daemons_api_child_stops_when_the_daemon_is_killed(tmp_path: Path) -> None:
    """The API child (in a session of its own) exits within seconds once its daemon dies by SIGKILL."""
    port = free_port()
    config = write_api_config(tmp_path, port)
    subprocess.run([sys.executable, "-m", "autoquant", "--config", str(config), "migrate"], check=True)
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(config)],
        env={**os.environ, "AUTOQUANT_API_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 30, "the API child to answer")
        parent.kill()
        parent.wait()
        wait_for(lambda: _gone(child), 15, "the orphaned API to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        parent.stdout.close()
        if not _gone(child):
            os.kill(child, 9)


def _gone(pid: int) -> bool:
    """The process has exited (no entry, or a zombie not yet reaped by its new parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
