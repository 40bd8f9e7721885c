"""``make chaos`` in miniature: two kill cycles, a clean run, and the one JSON line saying all is well."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_two_chaos_cycles_converge(tmp_path: Path) -> None:
    """python -m autoquant.chaos with CHAOS_CYCLES=2 prints one JSON line with zero findings, exits 0."""
    env = {**os.environ, "CHAOS_CYCLES": "2", "CHAOS_DIR": str(tmp_path), "CHAOS_CLEAN_RUN_S": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "autoquant.chaos"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout + done.stderr
    report = json.loads(lines[0])
    assert report["cycles"] == 2
    zeros = {key: report[key] for key in ("orphans", "duplicates", "mismatches", "unresolved")}
    assert zeros == dict.fromkeys(zeros, 0), done.stderr
    assert done.returncode == 0, done.stderr
