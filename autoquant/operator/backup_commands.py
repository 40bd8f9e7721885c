"""``autoquant backup DEST`` and ``autoquant restore SRC``: the operator's faces of ``ledger.backup``.

``backup`` runs beside a trading daemon (an online copy; the daemon's writer never waits for it),
verifies the copy and records it in the ledger. ``restore`` takes the ledger lock first, so it is
refused while a daemon holds the ledger; the restored ledger is HALTED until an operator's ``resume``,
after the daemon's start-up reconciliation has adopted what the broker did since the backup.
A refusal is one line and exit 2, with nothing changed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from autoquant.errors import LedgerLocked
from autoquant.ledger.backup import (
    BackupRefused,
    check_source,
    record_backup_file,
    restore_ledger,
    take_backup,
)
from autoquant.runtime.config import Config
from autoquant.runtime.lock import LedgerLock

EXIT_OK = 0


def actor() -> str:
    """Who restored, as the CLI's controls name their actor (user@cli)."""
    try:
        return f"{getpass.getuser()}@cli"
    except Exception:  # getpass raises various errors where there is no user entry (containers)
        return "operator@cli"


def cmd_backup(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    dest = Path(args.dest).absolute()
    info = take_backup(config.ledger.path, dest)
    recorded = record_backup_file(config.ledger.path, info, "cli", time.time_ns())
    if args.json:
        body = {
            "path": str(info.path),
            "last_journal_seq": info.last_journal_seq,
            "size_bytes": info.size_bytes,
            "sha256": info.sha256,
            "verified": True,
            "recorded": recorded,
        }
        out.write(json.dumps(body) + "\n")
    else:
        out.write(
            f"backup {info.path}: {info.size_bytes} bytes up to global sequence {info.last_journal_seq}, "
            f"sha256 {info.sha256}; verified (integrity, migrations, append-only triggers)"
            + (
                ""
                if recorded
                else "; not recorded: the ledger predates the backups table (`autoquant migrate`)"
            )
            + "\n"
        )
    return EXIT_OK


def cmd_restore(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    source, ledger = Path(args.src).absolute(), config.ledger.path
    check_source(source, ledger)  # before the lock: a bad SRC creates nothing, not even the lock file
    lock = LedgerLock(ledger)
    try:
        lock.acquire()
    except LedgerLocked as error:
        raise BackupRefused(f"restore refused: {error}; nothing was changed") from None
    try:
        info = restore_ledger(source, ledger, actor=actor(), now_ns=time.time_ns())
    finally:
        lock.release()
    moved = ", ".join(str(path) for path in info.moved_aside) or "nothing (there was no ledger)"
    out.write(
        f"restored {ledger} from {source} (up to global sequence {info.backup.last_journal_seq}); "
        f"moved aside: {moved}\n"
        f"trading is HALTED (incident {info.incident_id}): start the daemon, let its start-up "
        "reconciliation adopt what the broker did since the backup, check `autoquant incidents`, "
        'resolve them (`autoquant resolve ID --note "…"`), then `autoquant resume --reason "…"`\n'
    )
    return EXIT_OK


def add_commands(add_parser: Callable[..., argparse.ArgumentParser]) -> None:
    """Register both commands with the CLI's ``sub.add_parser``."""
    backup = add_parser("backup", help="online, verified copy of the ledger (safe while trading)")
    backup.add_argument("dest", metavar="DEST", help="a new file (never overwritten)")
    backup.add_argument("--json", action="store_true", help="one JSON object")
    backup.set_defaults(handler=cmd_backup)
    restore = add_parser("restore", help="replace the ledger with a verified backup (daemon stopped)")
    restore.add_argument(
        "src", metavar="SRC", help="a backup file (`autoquant backup`, or `litestream restore`)"
    )
    restore.set_defaults(handler=cmd_restore)
