"""The status page in a real headless browser (Debian's chromium): it loads, shows the trading state and
why, and a screenshot is saved."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.api.conftest import TOKEN, ApiDaemon

pytestmark = pytest.mark.slow

INSTALL = "apt-get install -y chromium"


def chromium() -> str:
    """The browser's path, installing Debian's package first where this process may (root)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env, timeout=900)
        found = shutil.which("chromium")
    if not found:
        pytest.fail(
            f"the status page test needs Debian's chromium: run `{INSTALL}` (as root), or `make browser`"
        )
    return found


def headless(browser: str, profile: Path, *action: str, url: str) -> str:
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--window-size=420,1400",
            *action,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_status_page_shows_the_trading_state_in_a_browser(api_daemon: ApiDaemon, tmp_path: Path) -> None:
    """Headless chromium loads `/?token=`; its DOM holds HALTED with the halt's reason; a screenshot saved."""
    browser = chromium()
    halted = api_daemon.post("/api/v1/halt", {"reason": "browser test halt"})
    assert halted.status_code == 200
    try:
        url = f"{api_daemon.base}/?token={TOKEN}"
        dom = headless(browser, tmp_path / "profile", "--dump-dom", url=url)
        shot = tmp_path / "status.png"
        headless(browser, tmp_path / "profile", f"--screenshot={shot}", url=url)
    finally:
        api_daemon.post("/api/v1/resume", {"reason": "browser test over"})
    assert '<span id="trading-state" class="state-halted">HALTED</span>' in dom
    assert "browser test halt" in dom
    assert '<p id="broker">broker: reachable</p>' in dom
    assert 'id="positions"' in dom and 'id="fills"' in dom and 'id="open-orders"' in dom
    assert "<svg" in dom or "no equity curve" in dom
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000
    print(f"\nscreenshot: {shot}")
