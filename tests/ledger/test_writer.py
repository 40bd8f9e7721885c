"""The batching writer: one transaction per batch, each write's failure isolated, results after COMMIT."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from autoquant.ledger.connection import ExternalWrites, WriterWatch, connect_writer, migrate_file
from autoquant.ledger.threads import WriterThread, run_write_batch


def insert_control(reason: str, fail: bool = False) -> Callable[[sqlite3.Connection], int]:
    def write(conn: sqlite3.Connection) -> int:
        cursor = conn.execute(
            "INSERT INTO controls (kind, scope, reason, actor, local_ts_ns)"
            " VALUES ('pause', 'account', ?, 't', 1)",
            (reason,),
        )
        if fail:
            raise ValueError(f"{reason} failed after writing")
        return int(cursor.lastrowid or 0)

    return write


def test_a_failed_write_in_a_batch_rolls_back_only_its_own_rows(tmp_ledger_path: Path) -> None:
    """A batch whose middle write raises after inserting keeps the others' rows, in order, and not its own."""
    migrate_file(tmp_ledger_path)
    conn = connect_writer(tmp_ledger_path)
    try:
        outcomes = run_write_batch(
            conn,
            [insert_control("a"), insert_control("b", fail=True), insert_control("c")],
        )
        assert [ok for ok, _ in outcomes] == [True, False, True]
        assert isinstance(outcomes[1][1], ValueError)
        reasons = [row[0] for row in conn.execute("SELECT reason FROM controls ORDER BY seq")]
        assert reasons == ["a", "c"]
        assert not conn.in_transaction
        journal = conn.execute("SELECT count(*) FROM journal WHERE kind = 'control'").fetchone()[0]
        assert journal == 2  # the failed write's journal entry went with it
    finally:
        conn.close()


def test_a_batch_without_failures_commits_every_write(tmp_ledger_path: Path) -> None:
    """Sixty-four writes in one batch all commit, each returning its own result."""
    migrate_file(tmp_ledger_path)
    conn = connect_writer(tmp_ledger_path)
    try:
        outcomes = run_write_batch(conn, [insert_control(f"r{n}") for n in range(64)])
        assert [value for _, value in outcomes] == list(range(1, 65))
        assert conn.execute("SELECT count(*) FROM controls").fetchone()[0] == 64
    finally:
        conn.close()


def _snapshot(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO account_snapshots (cash, equity, buying_power, local_ts_ns) VALUES ('1', '1', '1', 1)"
    )
    conn.execute("COMMIT")


def test_a_foreign_commit_just_after_ours_is_not_absorbed_as_ours(tmp_path: Path) -> None:
    """A CLI commit landing between our COMMIT and absorb() still reads as another process's write."""
    path = tmp_path / "ledger.db"
    migrate_file(path)
    writer = connect_writer(path)
    other = sqlite3.connect(path, isolation_level=None)
    external = ExternalWrites(path, writer)
    try:
        _snapshot(writer)
        external.absorb(writer)
        assert external.changed() is False, "our own commit is not a change"
        _snapshot(writer)
        _snapshot(other)  # lands before we absorb our commit
        external.absorb(writer)
        assert external.changed() is True
        assert external.changed() is False
        _snapshot(other)  # while the writer is idle
        assert external.changed() is True
    finally:
        external.close()
        other.close()
        writer.close()


def test_a_writer_on_the_loop_is_asked_itself_and_its_own_commits_are_no_change(tmp_path: Path) -> None:
    """``WriterWatch`` (a ledger whose batches run on the loop) reports another connection's commits,
    each once, and never the writer's own, with nothing absorbed after them."""
    path = tmp_path / "ledger.db"
    migrate_file(path)
    writer = connect_writer(path, durable=False)
    other = sqlite3.connect(path, isolation_level=None)
    watch = WriterWatch(writer)
    try:
        _snapshot(writer)
        assert watch.changed() is False, "our own commit is not a change"
        _snapshot(other)
        _snapshot(writer)
        assert watch.changed() is True
        assert watch.changed() is False
        watch.close()
        _snapshot(other)
        assert watch.changed() is False, "closed: nothing more is looked for"
    finally:
        other.close()
        writer.close()


ON_LOOP = pytest.mark.parametrize("on_loop", [False, True], ids=["thread", "on_loop"])


@ON_LOOP
async def test_the_writes_of_one_loop_turn_share_one_transaction(
    tmp_ledger_path: Path, on_loop: bool
) -> None:
    """64 tasks writing in the same loop turn commit as one batch (one fsync), each with its own result."""
    migrate_file(tmp_ledger_path)
    writer = WriterThread(connect_writer(tmp_ledger_path), tmp_ledger_path, on_loop=on_loop)
    try:
        results = await asyncio.gather(*(writer.write(insert_control(f"r{n}")) for n in range(64)))
        assert sorted(results) == list(range(1, 65))
        assert writer.batches == 1
        await asyncio.gather(*(writer.write(insert_control(f"s{n}")) for n in range(64)))
        assert writer.batches == 2
    finally:
        await writer.close()
    conn = sqlite3.connect(tmp_ledger_path)
    try:
        assert conn.execute("SELECT count(*) FROM controls").fetchone()[0] == 128
    finally:
        conn.close()


@ON_LOOP
async def test_a_failed_write_in_a_turns_batch_fails_only_its_caller(
    tmp_ledger_path: Path, on_loop: bool
) -> None:
    """In a batch formed by one loop turn, the failing write's caller gets its error; the others commit."""
    migrate_file(tmp_ledger_path)
    writer = WriterThread(connect_writer(tmp_ledger_path), tmp_ledger_path, on_loop=on_loop)
    try:
        outcomes = await asyncio.gather(
            writer.write(insert_control("a")),
            writer.write(insert_control("b", fail=True)),
            writer.write(insert_control("c")),
            return_exceptions=True,
        )
        assert isinstance(outcomes[1], ValueError)
        assert [outcomes[0], outcomes[2]] == [1, 2]
        assert writer.batches == 1
    finally:
        await writer.close()


@ON_LOOP
async def test_a_write_submitted_in_the_turn_that_closes_the_writer_is_committed(
    tmp_ledger_path: Path, on_loop: bool
) -> None:
    """close() hands over the jobs submitted earlier in the same loop turn before it stops the thread."""
    migrate_file(tmp_ledger_path)
    writer = WriterThread(connect_writer(tmp_ledger_path), tmp_ledger_path, on_loop=on_loop)
    future = writer.submit(insert_control("last"))
    await writer.close()
    assert await future == 1


async def test_on_the_loop_a_turns_writes_run_at_its_end_and_answer_after_commit(
    tmp_ledger_path: Path,
) -> None:
    """``on_loop``: the writes run on the loop's own thread once the turn that queued them ends (not
    as they are queued), in one transaction, and their callers hear after COMMIT, one turn later."""
    migrate_file(tmp_ledger_path)
    writer = WriterThread(connect_writer(tmp_ledger_path), tmp_ledger_path, on_loop=True)
    ran_on: list[int] = []
    committed: list[bool] = []

    def write(conn: sqlite3.Connection) -> int:
        ran_on.append(threading.get_ident())
        return insert_control("x")(conn)

    def on_commit(_: int) -> None:
        committed.append(visible_to_another_connection())

    def visible_to_another_connection() -> bool:
        with sqlite3.connect(tmp_ledger_path) as other:  # sees the rows only once they are committed
            return bool(other.execute("SELECT count(*) FROM controls").fetchone()[0] == 3)

    try:
        futures = [writer.submit(write, on_commit) for _ in range(3)]
        assert ran_on == []  # queued only: nothing runs before the turn ends
        await asyncio.sleep(0)  # one turn later: run, committed and answered
        assert all(future.done() for future in futures)
        assert await asyncio.gather(*futures) == [1, 2, 3]
        assert ran_on == [threading.get_ident()] * 3
        assert committed == [True, True, True]
        assert writer.batches == 1
    finally:
        await writer.close()
