"""``autoquant doctor``: is the config valid, the ledger whole and its replica current? Every problem, in
words or ``--json``. The ledger checks themselves are ``autoquant.ledger.integrity`` over
``autoquant.ledger.verify`` (``run``, ``backup`` and ``restore`` use them too)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from autoquant.errors import ConfigError
from autoquant.ledger import integrity
from autoquant.ledger.settings import BackupSettings
from autoquant.operator import render
from autoquant.operator.replica import ReplicaError, replica_lag
from autoquant.runtime import config as config_module
from autoquant.runtime.config import Config

EXIT_OK, EXIT_PROBLEM = 0, 1


def check_ledger(path: Path) -> list[str]:
    """Problems with the ledger file; an empty list means healthy. Never modifies the file."""
    return integrity.check_ledger(path)


def check_replica(settings: BackupSettings, ledger: Path) -> tuple[str | None, list[str]]:
    """The Litestream replica's lag as one line, and the problems (none when no replica is configured)."""
    if settings.litestream_config is None:
        return None, []
    try:
        lag = replica_lag(settings.litestream_config, ledger)
    except ReplicaError as error:
        return None, [f"replica: {error}"]
    line = f"replica: {lag.describe()} ({settings.litestream_config})"
    if lag.lag_s > settings.max_replica_lag_s:
        limit = settings.max_replica_lag_s
        return line, [f"replica lag {lag.lag_s:.0f} s exceeds [backup] max_replica_lag_s {limit:.0f}"]
    return line, []


def cmd_doctor(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    problems = check_ledger(config.ledger.path)
    replica, replica_problems = check_replica(config.backup, config.ledger.path)
    problems += replica_problems
    source = config.source or "built-in defaults"
    if getattr(args, "json", False):
        body = {"config": str(source), "ledger": str(config.ledger.path), "replica": replica}
        render.write_json({**body, "problems": problems, "ok": not problems}, out)
        return EXIT_PROBLEM if problems else EXIT_OK
    out.write(f"config: ok ({source})\n")
    if replica is not None:
        out.write(replica + "\n")
    if problems:
        for problem in problems:
            out.write(f"problem: {problem}\n")
        return EXIT_PROBLEM
    out.write(f"ledger: ok ({config.ledger.path}: integrity, migrations, append-only triggers)\n")
    return EXIT_OK


def doctor_command(args: argparse.Namespace, out: TextIO) -> int:
    """``doctor`` lists an invalid config as a problem (exit 1) like any other, instead of failing on it."""
    try:
        config = config_module.load(args.config)
    except ConfigError as error:
        if getattr(args, "json", False):
            render.write_json(
                {"config": None, "ledger": None, "problems": [f"config: {error}"], "ok": False}, out
            )
        else:
            out.write(f"problem: config: {error}\n")
        return EXIT_PROBLEM
    return cmd_doctor(config, args, out)
