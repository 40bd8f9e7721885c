"""Shared fixtures. Tests use real parts: the SQLite ledger in a temp dir, the paper exchange."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoquant.clocks import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tmp_ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"
