"""`autoquant backup` and `restore`: an online verified copy, a restore that keeps what it replaces, and
every bad input refused in one line, exit 2, with nothing changed."""

from __future__ import annotations

import asyncio
import hashlib
import io
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from autoquant.domain.controls import Control, ControlKind
from autoquant.ledger import Ledger, LedgerReader, verify
from autoquant.ledger.backup import file_sha256, take_backup
from autoquant.operator.cli import main
from autoquant.runtime.lock import LedgerLock


def control(i: int) -> Control:
    return Control(kind=ControlKind.PAUSE, scope=f"s{i % 3}", reason=f"r{i}", actor="t", local_ts_ns=i + 1)


async def make_ledger(path: Path, controls: int = 20) -> None:
    async with await Ledger.open(path) as ledger:
        for i in range(controls):
            await ledger.append_control(control(i))


def cli(tmp_path: Path, ledger: Path, *args: str) -> tuple[int, str]:
    config = tmp_path / "c.toml"
    config.write_text(f'[ledger]\npath = "{ledger}"\n')
    out = io.StringIO()
    return main(["--config", str(config), *args], out=out), out.getvalue()


def journal(path: Path) -> list[tuple[int, str, int]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return [
            (int(a), str(b), int(c))
            for a, b, c in conn.execute("SELECT seq, kind, row_seq FROM journal ORDER BY seq")
        ]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` by name, with its content's hash: what 'nothing changed' compares."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


async def test_backup_while_writing_is_one_consistent_point(tmp_path: Path) -> None:
    """A backup taken while another task keeps appending is whole and verified, holds a prefix of the
    live journal up to the sequence it reports, and the ledger records it with its hash."""
    path, dest = tmp_path / "ledger.db", tmp_path / "copy.db"
    async with await Ledger.open(path) as ledger:
        stop, underway = asyncio.Event(), asyncio.Event()

        async def keep_writing() -> int:
            written = 0
            while not stop.is_set():
                await ledger.append_control(control(written))
                written += 1
                if written == 50:
                    underway.set()
            return written

        writer = asyncio.create_task(keep_writing())
        await underway.wait()
        info = await asyncio.to_thread(take_backup, path, dest)
        stop.set()
        assert await writer > 0
        await ledger.record_backup(info, "test", 1)
    assert verify.problems(dest) == []
    copied, live = journal(dest), journal(path)
    assert copied == live[: len(copied)] and copied[-1][0] == info.last_journal_seq
    assert len(live) > len(copied), "writes went on after the backup's point"
    assert info.sha256 == file_sha256(dest) and info.size_bytes == dest.stat().st_size
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT path, sha256, last_journal_seq FROM backups").fetchall() == [
            (str(dest), info.sha256, info.last_journal_seq)
        ]
    assert not Path(f"{dest}-wal").exists(), "a backup is one self-contained file"


async def test_restore_moves_the_ledger_aside_and_halts(tmp_path: Path) -> None:
    """restore keeps the replaced ledger with its WAL and SHM under a timestamped name, records the
    restore point in the restored ledger, and halts trading with an incident that says to resume."""
    ledger, backup = tmp_path / "ledger.db", tmp_path / "b.db"
    await make_ledger(ledger)
    assert cli(tmp_path, ledger, "backup", str(backup))[0] == 0
    await make_ledger(ledger, controls=5)
    for suffix in ("-wal", "-shm"):
        Path(f"{ledger}{suffix}").write_bytes(b"stale " + suffix.encode())
    replaced = {suffix: Path(f"{ledger}{suffix}").read_bytes() for suffix in ("", "-wal", "-shm")}

    code, text = cli(tmp_path, ledger, "restore", str(backup))
    assert code == 0, text
    assert "HALTED" in text and "autoquant resume" in text
    aside = sorted(tmp_path.glob("ledger.db.before-restore-*"))
    assert [p.name.rsplit("Z", 1)[1] for p in aside] == ["", "-shm", "-wal"]
    for path in aside:
        assert path.read_bytes() == replaced[path.name.rsplit("Z", 1)[1]]
    assert not Path(f"{ledger}-wal").exists()
    assert verify.problems(ledger) == []
    async with await LedgerReader.open(ledger) as reader:
        state = await reader.control_state()
        assert state.trading_state.value == "halted"
        restore = await reader.open_restore()
        incidents = await reader.incidents(open_only=True)
    assert restore is not None and restore.backup_journal_seq == journal(backup)[-1][0]
    assert [i.kind for i in incidents] == ["ledger_restored"]
    assert "autoquant resume" in incidents[0].action


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page = 4096
    data[page : len(data) - page] = b"\xa5" * (len(data) - 2 * page)
    path.write_bytes(bytes(data))


def newer(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_ns)"
            " VALUES (9999, '9999_future', 'x', 0)"
        )


def not_sqlite(path: Path) -> None:
    path.write_text("hello, not sqlite\n")


def missing(path: Path) -> None:
    path.unlink()


def other_sqlite(path: Path) -> None:
    path.unlink()
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")


BAD_SOURCES: dict[str, tuple[Callable[[Path], None], str]] = {
    "not a ledger": (not_sqlite, "not an SQLite database"),
    "corrupt": (corrupt, "corrupt"),
    "newer than this code": (newer, "newer version"),
    "missing": (missing, "does not exist"),
    "another SQLite database": (other_sqlite, "not an autoquant ledger"),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
async def test_bad_restore_source_is_refused_with_nothing_changed(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SRC that is not a ledger, is corrupt, is newer than this code, or is missing: one line, exit 2,
    the ledger and its folder unchanged."""
    ledger, source = tmp_path / "ledger.db", tmp_path / "src.db"
    await make_ledger(ledger)
    take_backup(ledger, source)
    spoil, expected = BAD_SOURCES[case]
    spoil(source)
    before = snapshot(tmp_path)
    code, _ = cli(tmp_path, ledger, "restore", str(source))
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("autoquant: ") and expected in err
    assert snapshot(tmp_path) == {**before, "c.toml": snapshot(tmp_path)["c.toml"]}


async def test_restore_while_a_daemon_holds_the_ledger_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ledger lock held (as a running daemon holds it): restore refused in one line, exit 2."""
    ledger, backup = tmp_path / "ledger.db", tmp_path / "b.db"
    await make_ledger(ledger)
    take_backup(ledger, backup)
    with LedgerLock(ledger):
        before = snapshot(tmp_path)
        code, _ = cli(tmp_path, ledger, "restore", str(backup))
        after = snapshot(tmp_path)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "held by a running daemon" in err and "nothing was changed" in err
    assert after == {**before, "c.toml": after["c.toml"]}


async def test_backup_to_an_existing_target_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A backup never overwrites: an existing DEST is refused in one line, exit 2, nothing changed."""
    ledger, dest = tmp_path / "ledger.db", tmp_path / "exists.db"
    await make_ledger(ledger)
    dest.write_text("precious")
    before = snapshot(tmp_path)
    code, _ = cli(tmp_path, ledger, "backup", str(dest))
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "already exists" in err
    assert snapshot(tmp_path) == {**before, "c.toml": snapshot(tmp_path)["c.toml"]}


def test_the_running_system_never_truncates_the_wal() -> None:
    """Litestream-compatible checkpointing: no module the daemon runs issues a TRUNCATE or RESTART
    checkpoint or changes the automatic (PASSIVE) one; only the bench, on its own files, does."""
    package = Path(__file__).resolve().parents[2] / "autoquant"
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.parent.name not in ("bench", "chaos")
        for text in [path.read_text(encoding="utf-8").lower()]
        if "wal_checkpoint" in text or "wal_autocheckpoint" in text
    ]
    assert offenders == []


async def test_a_ledger_from_an_older_autoquant_is_backed_up_untouched_and_restores_forward(
    tmp_path: Path,
) -> None:
    """Backing up before an upgrade: the old-schema ledger is copied without being migrated (the backup
    is not recorded in it), and restoring that copy migrates it forward and halts as usual."""
    from tests.ledger.test_journal_projection import old_ledger

    ledger, backup = tmp_path / "ledger.db", tmp_path / "b.db"
    old_ledger(ledger)
    before = file_sha256(ledger)
    code, text = cli(tmp_path, ledger, "backup", str(backup))
    assert code == 0 and "not recorded" in text
    assert file_sha256(ledger) == before
    code, text = cli(tmp_path, ledger, "restore", str(backup))
    assert code == 0, text
    assert verify.problems(ledger) == []
    async with await LedgerReader.open(ledger) as reader:
        assert await reader.open_restore() is not None
        assert [o.client_order_id for o in await reader.open_orders()] == ["aq-2"]
