"""The operator's surface: ``autoquant [--config PATH] COMMAND``.

Every failure an operator can cause or fix (bad config, a ledger that is not one, a ledger held by a
running daemon, missing keys) ends in one line on stderr saying what is wrong and what to do, and a
non-zero exit; a bug (anything else) keeps its traceback. Inspection commands open the ledger
read-only and refuse a missing one; commands that write (pause, halt, resolve, run) create and
migrate it on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from autoquant.errors import AutoquantError
from autoquant.operator import cli_acts, cli_inspect
from autoquant.operator.cli_common import EXIT_ERROR, EXIT_OK, EXIT_PROBLEM, actor, parse_since
from autoquant.operator.doctor import cmd_doctor, doctor_command
from autoquant.research import commands as research_commands
from autoquant.runtime import config as config_module
from autoquant.runtime.config import Config, LedgerSettings
from autoquant.runtime.paper_options import add_arguments as paper_arguments

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_PROBLEM", "actor", "build_parser", "main", "parse_since"]


def cmd_migrate(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.ledger.connection import migrate_file

    applied = migrate_file(config.ledger.path)
    names = ", ".join(m.name for m in applied) or "nothing to apply"
    out.write(f"ledger {config.ledger.path}: {names}\n")
    return EXIT_OK


def cmd_run(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.runtime.daemon import run_daemon

    return run_daemon(config)


def cmd_reconcile(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.runtime.daemon import reconcile_once

    return reconcile_once(config, out, as_json=args.json)


def cmd_paper_server(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.runtime.config import alpaca_secrets
    from autoquant.runtime.paper_options import exposure_warning, prepare_process
    from autoquant.runtime.paper_server import serve

    keys = alpaca_secrets()
    warning = exposure_warning(args.host)
    if warning:
        sys.stderr.write(warning + "\n")
        sys.stderr.flush()
    prepare_process()
    asyncio.run(serve(config, args.host, args.port, keys=keys))
    return EXIT_OK


def cmd_api(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.operator.api.server import run

    return run(config, args.listen)


def _add_daemon_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """run, migrate, doctor, reconcile."""
    sub.add_parser("run", help="run the daemon in the foreground").set_defaults(handler=cmd_run)
    sub.add_parser("migrate", help="create or migrate the ledger").set_defaults(handler=cmd_migrate)
    doctor_parser = sub.add_parser("doctor", help="check the config and the ledger")
    doctor_parser.add_argument("--json", action="store_true", help="one JSON object: ok, problems")
    doctor_parser.set_defaults(handler=cmd_doctor)
    reconcile = sub.add_parser(
        "reconcile",
        help="one reconciliation run with the daemon stopped: exit 0 clean, 1 mismatch, 2 error",
        description="One reconciliation run against the broker. It needs the daemon stopped (it takes "
        "the ledger's lock); a running daemon reconciles by itself every [reconcile] interval_s.",
    )
    reconcile.add_argument("--json", action="store_true", help="one JSON object: result, summary")
    reconcile.set_defaults(handler=cmd_reconcile)


def _add_servers_and_tools(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """api, the backup commands, paper-server, bars."""
    api = sub.add_parser("api", help="serve the operator HTTP API ([api] listen; token from the environment)")
    api.add_argument("--listen", help="HOST:PORT (default: [api] listen)")
    api.set_defaults(handler=cmd_api)

    from autoquant.operator.backup_commands import add_commands as add_backup_commands

    add_backup_commands(sub.add_parser)

    paper = sub.add_parser(
        "paper-server",
        help="serve the paper exchange as an Alpaca-compatible API",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    paper_arguments(paper)
    paper.set_defaults(handler=cmd_paper_server)

    from autoquant.operator.bars_download import add_bars_arguments

    add_bars_arguments(sub.add_parser("bars", help="historical bars: download them to a CSV for backtests"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autoquant", description="An asyncio trading daemon for Alpaca accounts: run, inspect, control."
    )
    parser.add_argument(
        "--config", help="TOML config file (else $AUTOQUANT_CONFIG, else config/autoquant.toml)"
    )
    parser.add_argument(
        "--ledger", help="use this ledger file instead of the config's (a backtest's, a copy)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    research_commands.register(sub)
    # Registered in this order, which is the order `autoquant --help` lists them in.
    _add_daemon_commands(sub)
    cli_acts.add_controls(sub)
    cli_inspect.add_views(sub)
    cli_acts.add_order_acts(sub)
    cli_inspect.add_trace(sub)
    _add_servers_and_tools(sub)
    cli_inspect.add_logs(sub)
    cli_inspect.add_ledger_option(sub)
    return parser


def operator_error(error: BaseException) -> AutoquantError | None:
    """The AutoquantError an exception is, or that a task group's exception group carries."""
    if isinstance(error, AutoquantError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = operator_error(inner)
            if found is not None:
                return found
    return None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run one command. Operator errors end in one line on stderr and exit 2, never a traceback."""
    stream = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        if args.handler is cmd_doctor:
            return doctor_command(args, stream)
        config = config_module.load(args.config)
        if getattr(args, "ledger", None):
            config = config.model_copy(update={"ledger": LedgerSettings(path=Path(args.ledger))})
        code: int = args.handler(config, args, stream)
        stream.flush()  # here, so a reader that has gone away is met inside the handling below
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader stopped reading (`autoquant logs | head -1`): that is its right, not an error.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except BaseException as error:
        found = operator_error(error)
        if found is not None:
            message = str(found)
        elif isinstance(error, OSError) and error.strerror:
            where = f"{error.filename}: " if error.filename else ""
            message = f"{where}{error.strerror}: check the paths in the config and their permissions"
        elif isinstance(error, sqlite3.Error):
            message = f"ledger: {error}: `autoquant doctor` checks the ledger"
        else:
            raise  # a bug, not an operator error: the traceback is what a developer needs
        sys.stderr.write(f"autoquant: {' '.join(message.split())}\n")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
