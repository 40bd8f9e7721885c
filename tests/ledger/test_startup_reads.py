"""Start-up costs what the open orders and today cost, not what the history costs (issue 9's target).

Measured in bytes read, not seconds: the daemon's start-up runs in a fresh process (the start-up bench's
child) on two ledgers that differ only in how much history lies before today, and the bytes it reads
(``rchar``: SQLite reads every page it touches with ``pread``) must not grow with that history. A whole-file
``integrity_check`` or a table scan of fills, orders, events, decisions, account snapshots or
reconciliation runs reads megabytes more on the larger ledger; index searches and bounded windows do not.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from autoquant.bench.history import build_history
from autoquant.bench.startup import measure_child
from autoquant.ledger import reads, surface

#: One fill a minute: the smaller history already fills the bounded windows (the latest 4,096 submission
#: outcomes), the larger one adds 24,000 fills (and their orders, decisions and snapshots) on older days.
SMALL, LARGE, MINUTE = 8_000, 32_000, 60
#: Extra bytes the larger history may cost at start-up; the history itself adds ~28 MB.
ALLOWED_MB = 0.5


def _history(root: Path, fills: int) -> Path:
    directory = root / f"history-{fills}"
    directory.mkdir()
    build_history(directory, fills, 5, seconds_apart=MINUTE)
    return directory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads are counted from /proc/self/io")
def test_daemon_start_reads_do_not_grow_with_the_history(tmp_path: Path) -> None:
    """The daemon's start to READY reads under 0.5 MB more on a ledger with 24,000 more fills (~28 MB)."""
    small, large = _history(tmp_path, SMALL), _history(tmp_path, LARGE)
    added_mb = ((large / "ledger.db").stat().st_size - (small / "ledger.db").stat().st_size) / 1e6
    assert added_mb > 20  # the comparison means something only if the history really is larger
    read = {}
    for name, directory in (("small", small), ("large", large)):
        daemon = measure_child("daemon", directory, tmp_path / f"{name}-daemon.log")
        ledger = measure_child("ledger", directory / "ledger.db", tmp_path / f"{name}-ledger.log")
        read[name] = (float(daemon["read_mb"]), float(ledger["read_mb"]))
    grew = [large - small for small, large in zip(read["small"], read["large"], strict=True)]
    assert all(g < ALLOWED_MB for g in grew), (
        f"start-up reads grew by {grew} MB over {added_mb:.0f} MB: {read}"
    )


def _plan(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> list[str]:
    return [str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def test_todays_equity_reads_search_the_time_index(tmp_path: Path) -> None:
    """The day's equity (read at start and by the status page) searches account_snapshots by time: no scan."""
    path = tmp_path / "ledger.db"
    build_history(tmp_path, 200, 1)
    statements: list[str] = []
    conn = sqlite3.connect(path)
    try:
        conn.set_trace_callback(statements.append)
        reads.equity_rows(conn, 0)
        surface.read_equity_curve(conn, 0, 10)
        conn.set_trace_callback(None)
        snapshot_reads = [s for s in statements if "account_snapshots" in s]
        assert len(snapshot_reads) == 3
        for sql in snapshot_reads:
            plan = _plan(conn, sql, ())
            assert not any(step.startswith("SCAN account_snapshots") for step in plan), (sql, plan)
            assert any("account_snapshots_by_time" in step for step in plan), (sql, plan)
    finally:
        conn.close()
