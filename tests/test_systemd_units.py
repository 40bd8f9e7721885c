"""The systemd units: `systemd-analyze verify` accepts them, and they say what the design promises.

`systemd-analyze verify` refuses a unit whose ExecStart binary does not exist, and the installed
path (/usr/local/bin/autoquant) does not exist on a build machine. So each test copies the unit to
a temp dir and rewrites that path to a temp executable script; everything else is verified as
shipped. Unknown keys only produce warnings (exit code 0), so stderr is checked for any line
naming the unit. Skipped only where systemd-analyze is not installed (Debian package: systemd).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from autoquant.runtime.config import DaemonSettings

CONFIG = Path(__file__).resolve().parent.parent / "config"
INSTALLED_BINARY = "/usr/local/bin/autoquant"
ANALYZE = shutil.which("systemd-analyze")

needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (apt: systemd)")


def directives(path: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> values (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def staged(unit: str, tmp_path: Path) -> Path:
    """Copy the unit to tmp_path with ExecStart pointing at an executable that exists."""
    binary = tmp_path / "autoquant"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    text = (CONFIG / unit).read_text(encoding="utf-8")
    assert INSTALLED_BINARY in text
    copy = tmp_path / unit
    copy.write_text(text.replace(INSTALLED_BINARY, str(binary)), encoding="utf-8")
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60, check=False)


def complaints(result: subprocess.CompletedProcess[str], unit_name: str) -> list[str]:
    stem = unit_name.split("@")[0]
    return [line for line in result.stderr.splitlines() if stem in line]


@needs_analyze
@pytest.mark.parametrize("unit", ["autoquant.service", "autoquant@.service"])
def test_units_pass_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    """systemd-analyze verify exits 0 with no warning about the unit (the template as an instance)."""
    copy = staged(unit, tmp_path)
    target = copy if "@" not in unit else copy.with_name("autoquant@paper-main.service")
    result = analyze("verify", "--man=no", str(target))
    assert result.returncode == 0, result.stderr
    assert complaints(result, unit) == []


@needs_analyze
@pytest.mark.parametrize("unit", ["autoquant.service", "autoquant@.service"])
def test_units_are_hardened(unit: str, tmp_path: Path) -> None:
    """systemd-analyze security (offline) rates the unit's exposure at 2.0 or better out of 10."""
    copy = staged(unit, tmp_path)
    target = copy if "@" not in unit else copy.with_name("autoquant@paper-main.service")
    result = analyze("security", "--offline=yes", "--threshold=20", str(target))
    assert result.returncode == 0, result.stdout[-2000:]


@pytest.mark.parametrize("unit", ["autoquant.service", "autoquant@.service"])
def test_units_carry_the_agreed_service_settings(unit: str) -> None:
    """Type=notify, a 30 s watchdog, restart with a start limit, a stop timeout above the drain."""
    unit_section = directives(CONFIG / unit)["Unit"]
    service = directives(CONFIG / unit)["Service"]
    assert service["Type"] == ["notify"]
    assert service["WatchdogSec"] == ["30"]
    assert service["Restart"] == ["on-failure"]
    assert "StartLimitIntervalSec" in unit_section
    assert "StartLimitBurst" in unit_section
    assert service["KillSignal"] == ["SIGTERM"]
    assert float(service["TimeoutStopSec"][0]) > DaemonSettings().drain_timeout_s
    assert service["User"] == ["autoquant"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
    }.items():
        assert service[key] == [value], key


def test_main_unit_runs_one_daemon_on_the_shared_config() -> None:
    """autoquant.service runs /etc/autoquant/autoquant.toml with the alpaca.env keys and its state dir."""
    service = directives(CONFIG / "autoquant.service")["Service"]
    assert service["ExecStart"] == [f"{INSTALLED_BINARY} run --config /etc/autoquant/autoquant.toml"]
    assert service["EnvironmentFile"] == ["-/etc/autoquant/alpaca.env"]
    assert service["StateDirectory"] == ["autoquant"]


def test_template_names_everything_after_the_account() -> None:
    """autoquant@ACCOUNT.service reads ACCOUNT's config and keys and keeps its own state directory."""
    service = directives(CONFIG / "autoquant@.service")["Service"]
    assert service["ExecStart"] == [f"{INSTALLED_BINARY} run --config /etc/autoquant/%i.toml"]
    assert service["EnvironmentFile"] == ["-/etc/autoquant/%i.env"]
    assert service["StateDirectory"] == ["autoquant/%i"]
    assert service["LogsDirectory"] == ["autoquant/%i"]
    assert service["WorkingDirectory"] == ["%S/autoquant/%i"]


LITESTREAM_UNIT = "autoquant-litestream.service"
LITESTREAM_BINARY = "/opt/autoquant/bin/litestream"


def staged_litestream(tmp_path: Path) -> Path:
    binary = tmp_path / "litestream"
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    text = (CONFIG / LITESTREAM_UNIT).read_text(encoding="utf-8")
    assert LITESTREAM_BINARY in text
    copy = tmp_path / LITESTREAM_UNIT
    copy.write_text(text.replace(LITESTREAM_BINARY, str(binary)), encoding="utf-8")
    return copy


@needs_analyze
def test_litestream_unit_passes_verify_and_is_hardened(tmp_path: Path) -> None:
    """The Litestream unit: systemd-analyze verify clean, exposure 2.0 or better."""
    copy = staged_litestream(tmp_path)
    result = analyze("verify", "--man=no", str(copy))
    assert result.returncode == 0, result.stderr
    assert complaints(result, LITESTREAM_UNIT) == []
    result = analyze("security", "--offline=yes", "--threshold=20", str(copy))
    assert result.returncode == 0, result.stdout[-2000:]


def test_litestream_unit_replicates_the_shipped_config_as_the_daemons_user() -> None:
    """It runs `litestream replicate` on /etc/autoquant/litestream.yml as autoquant, restarting always."""
    service = directives(CONFIG / LITESTREAM_UNIT)["Service"]
    assert service["ExecStart"] == [f"{LITESTREAM_BINARY} replicate -config /etc/autoquant/litestream.yml"]
    assert service["User"] == ["autoquant"] and service["Restart"] == ["always"]
    assert (CONFIG / "litestream.yml").exists()
