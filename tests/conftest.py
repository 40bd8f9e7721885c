"""Shared fixtures. Tests use real parts: the SQLite ledger in a temp dir, the paper exchange."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from autoquant.clocks import FakeClock

# Property tests pin behaviour, not speed: on a shared 2-core machine an example that runs slow says
# nothing about the code (speed is measured in `make bench`), so no deadline and no too-slow health check.
settings.register_profile("autoquant", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("autoquant")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tmp_ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"
