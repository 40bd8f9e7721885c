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
import getpass
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from autoquant.domain.controls import ACCOUNT, Control, ControlKind
from autoquant.domain.values import to_ns
from autoquant.errors import AutoquantError, ConfigError
from autoquant.ledger import Ledger, LedgerReader
from autoquant.operator import doctor, inspection, render
from autoquant.research import commands as research_commands
from autoquant.runtime import config as config_module
from autoquant.runtime.config import Config, LedgerSettings

EXIT_OK, EXIT_PROBLEM, EXIT_ERROR = 0, 1, 2


def actor() -> str:
    try:
        return f"{getpass.getuser()}@cli"
    except Exception:  # getpass raises various errors where there is no user entry (containers)
        return "operator@cli"


def parse_since(text: str) -> int:
    """``10m``, ``2h``, ``1d`` ago, or an ISO-8601 time with a timezone; UTC nanoseconds."""
    from autoquant.operator.logview import parse_since as parse

    try:
        return to_ns(parse(text))
    except ValueError as error:
        raise AutoquantError(str(error)) from None


def _since(args: argparse.Namespace) -> int | None:
    return None if not getattr(args, "since", None) else parse_since(args.since)


async def with_ledger(config: Config, fn: Callable[[Ledger], Awaitable[int]]) -> int:
    """Run ``fn`` on the ledger opened for writing (created and migrated on first use)."""
    ledger = await Ledger.open(config.ledger.path)
    try:
        return await fn(ledger)
    finally:
        await ledger.close()


async def with_readonly(config: Config, fn: Callable[[LedgerReader], Awaitable[int]]) -> int:
    """Run ``fn`` on the existing ledger opened read-only: inspection never changes it."""
    ledger = await inspection.open_readonly(config.ledger.path)
    try:
        return await fn(ledger)
    finally:
        await ledger.close()


def cmd_migrate(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.ledger.connection import migrate_file

    applied = migrate_file(config.ledger.path)
    names = ", ".join(m.name for m in applied) or "nothing to apply"
    out.write(f"ledger {config.ledger.path}: {names}\n")
    return EXIT_OK


def cmd_doctor(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    problems = doctor.check_ledger(config.ledger.path)
    source = config.source or "built-in defaults"
    out.write(f"config: ok ({source})\n")
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
        out.write(f"problem: config: {error}\n")
        return EXIT_PROBLEM
    return cmd_doctor(config, args, out)


def _control(kind: ControlKind) -> Callable[[Config, argparse.Namespace, TextIO], int]:
    def command(config: Config, args: argparse.Namespace, out: TextIO) -> int:
        scope = getattr(args, "strategy", None) or ACCOUNT
        if scope != ACCOUNT and scope not in {s.id for s in config.strategies}:
            known = ", ".join(s.id for s in config.strategies) or "none"
            raise AutoquantError(f"--strategy {scope!r} is not a configured strategy (configured: {known})")
        if args.reason is not None and not args.reason.strip():
            raise AutoquantError("--reason is empty: say why (it is recorded in the ledger)")
        reason = args.reason or f"{kind.value} by operator"
        control = Control(kind=kind, scope=scope, reason=reason, actor=actor(), local_ts_ns=time.time_ns())

        async def write(ledger: Ledger) -> int:
            await ledger.append_control(control)
            state = await ledger.control_state()
            out.write(
                f"{kind.value} recorded for {scope}: trading state {state.trading_state.value}, "
                f"paused: {', '.join(sorted(state.paused)) or 'nothing'}\n"
            )
            return EXIT_OK

        return asyncio.run(with_ledger(config, write))

    return command


def cmd_resolve(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """Record that an operator dealt with an incident; pauses and halts stay until ``resume``."""
    if not args.note.strip():
        raise AutoquantError("--note is empty: say what was done (it is recorded in the ledger)")
    if not config.ledger.path.exists():
        raise AutoquantError(f"no ledger at {config.ledger.path}: there are no incidents to resolve")

    async def write(ledger: Ledger) -> int:
        resolved = await ledger.resolve_incident(args.incident_id, actor(), args.note, time.time_ns())
        if not resolved:
            out.write(f"incident {args.incident_id} was already resolved; nothing changed\n")
            return EXIT_OK
        out.write(f"incident {args.incident_id} resolved; pauses and halts stay until `autoquant resume`\n")
        return EXIT_OK

    return asyncio.run(with_ledger(config, write))


def cmd_cancel(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """Ask the running daemon to cancel one order or all open orders (it obeys in any trading state)."""
    if (args.client_order_id is None) == (not args.all):
        raise AutoquantError("name one CLIENT_ORDER_ID or pass --all (not both)")
    if not args.reason.strip():
        raise AutoquantError("--reason is empty: say why (it is recorded in the ledger)")
    if not config.ledger.path.exists():
        raise AutoquantError(f"no ledger at {config.ledger.path}: there are no orders to cancel")
    target = "*" if args.all else args.client_order_id

    async def write(ledger: Ledger) -> int:
        await ledger.request_cancel(target, args.reason, actor(), time.time_ns())
        what = "every open order" if target == "*" else target
        out.write(f"cancel of {what} requested; the running daemon carries it out within a second\n")
        return EXIT_OK

    return asyncio.run(with_ledger(config, write))


Build = Callable[[LedgerReader, argparse.Namespace, Config], Awaitable[Any]]


def _inspect(name: str, build: Build) -> Callable[[Config, argparse.Namespace, TextIO], int]:
    """An inspection command: arguments checked first, then the ledger read (read-only) and shown."""

    def command(config: Config, args: argparse.Namespace, out: TextIO) -> int:
        args.since_ns = _since(args)

        async def read(ledger: LedgerReader) -> int:
            value = await build(ledger, args, config)
            if args.json:
                render.write_json(value, out)
            elif name == "status":
                out.write("\n".join(render.status_lines(value)) + "\n")
            else:
                render.write_table(value, name, out)
            return EXIT_OK

        return asyncio.run(with_readonly(config, read))

    return command


async def _status(ledger: LedgerReader, args: argparse.Namespace, config: Config) -> Any:
    from autoquant.runtime.daemon import heartbeat_path

    return await inspection.status(ledger, heartbeat_path(config.ledger.path))


def cmd_trace(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.operator.trace import describe, trace

    async def read(ledger: LedgerReader) -> int:
        entries = await trace(ledger, args.id, config.logging.path)
        if entries is None:
            sys.stderr.write(
                f"autoquant: nothing in the ledger bears the id {args.id!r} "
                "(give a decision id, client order id or broker order id; `autoquant orders` lists them)\n"
            )
            return EXIT_PROBLEM
        if args.json:
            render.write_json(entries, out)
        else:
            out.writelines(describe(entry) + "\n" for entry in entries)
        return EXIT_OK

    return asyncio.run(with_readonly(config, read))


def cmd_run(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.runtime.daemon import run_daemon

    return run_daemon(config)


def cmd_reconcile(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.runtime.daemon import reconcile_once

    return reconcile_once(config, out)


def cmd_paper_server(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.runtime.config import alpaca_secrets
    from autoquant.runtime.paper_server import serve

    asyncio.run(serve(config, args.host, args.port, keys=alpaca_secrets()))
    return EXIT_OK


def cmd_logs(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.operator.logview import logs_command

    return logs_command(args, config.logging, out)


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

    sub.add_parser("run", help="run the daemon in the foreground").set_defaults(handler=cmd_run)
    sub.add_parser("migrate", help="create or migrate the ledger").set_defaults(handler=cmd_migrate)
    sub.add_parser("doctor", help="check the config and the ledger").set_defaults(handler=cmd_doctor)
    sub.add_parser(
        "reconcile", help="one reconciliation run: exit 0 clean, 1 mismatch, 2 error"
    ).set_defaults(handler=cmd_reconcile)
    for name, kind, help_text in (
        ("pause", ControlKind.PAUSE, "stop new orders (account or one strategy)"),
        ("resume", ControlKind.RESUME, "lift a pause or halt (an operator's act; nothing resumes by itself)"),
        ("halt", ControlKind.HALT, "kill switch: refuse all new orders until resume"),
        ("reduce", ControlKind.REDUCE, "accept only orders that shrink exposure until resume"),
    ):
        command = sub.add_parser(name, help=help_text)
        if kind in (ControlKind.PAUSE, ControlKind.RESUME):
            command.add_argument("--strategy", help="a strategy id (default: the whole account)")
        command.add_argument("--reason", required=kind is not ControlKind.RESUME, help="why (recorded)")
        command.set_defaults(handler=_control(kind))

    status = sub.add_parser("status", help="daemon, trading state, pauses, reconciliation, incidents, P&L")
    status.add_argument("--json", action="store_true", help="one JSON object (Decimals as strings)")
    status.set_defaults(handler=_inspect("status", _status))

    orders = sub.add_parser("orders", help="orders with their current state")
    orders.add_argument("--open", action="store_true", help="only orders not yet final")
    orders.add_argument("--symbol")
    orders.add_argument("--since", help="created at or after: 10m, 2h, 1d or an ISO time")
    orders.add_argument("--json", action="store_true", help="a JSON array (Decimals as strings)")
    orders.set_defaults(
        handler=_inspect(
            "orders",
            lambda ledger, args, _: inspection.orders(
                ledger, open_only=args.open, symbol=args.symbol, since_ns=args.since_ns
            ),
        )
    )

    fills = sub.add_parser("fills", help="executions, each counted once")
    fills.add_argument("--symbol")
    fills.add_argument("--since", help="received at or after: 10m, 2h, 1d or an ISO time")
    fills.add_argument("--json", action="store_true", help="a JSON array (Decimals as strings)")
    fills.set_defaults(
        handler=_inspect(
            "fills",
            lambda ledger, args, _: inspection.fills(ledger, symbol=args.symbol, since_ns=args.since_ns),
        )
    )

    positions = sub.add_parser("positions", help="positions per strategy and symbol, marked at the last fill")
    positions.add_argument("--json", action="store_true", help="a JSON array (Decimals as strings)")
    positions.set_defaults(
        handler=_inspect("positions", lambda ledger, args, _: inspection.positions(ledger))
    )

    incidents = sub.add_parser("incidents", help="what the daemon could not explain, and what to do")
    incidents.add_argument("--open", action="store_true", help="only incidents not yet resolved")
    incidents.add_argument("--json", action="store_true", help="a JSON array")
    incidents.set_defaults(
        handler=_inspect(
            "incidents", lambda ledger, args, _: inspection.incidents(ledger, open_only=args.open)
        )
    )

    cancel = sub.add_parser("cancel", help="cancel an open order (or --all); works while HALTED")
    cancel.add_argument("client_order_id", metavar="CLIENT_ORDER_ID", nargs="?")
    cancel.add_argument("--all", action="store_true", help="every open order")
    cancel.add_argument("--reason", required=True, help="why (recorded)")
    cancel.set_defaults(handler=cmd_cancel)

    resolve = sub.add_parser("resolve", help="record that an incident was dealt with")
    resolve.add_argument("incident_id", metavar="INCIDENT_ID")
    resolve.add_argument("--note", required=True, help="what was done (recorded)")
    resolve.set_defaults(handler=cmd_resolve)

    trace = sub.add_parser("trace", help="why did it do this? a decision, client or broker order id")
    trace.add_argument("id")
    trace.add_argument("--json", action="store_true", help="a JSON array of entries in time order")
    trace.set_defaults(handler=cmd_trace)

    paper = sub.add_parser("paper-server", help="serve the paper exchange as an Alpaca-compatible API")
    paper.add_argument("--host", default="127.0.0.1")
    paper.add_argument("--port", type=int, default=8765)
    paper.set_defaults(handler=cmd_paper_server)

    try:
        from autoquant.operator.logview import add_logs_arguments
    except ImportError:  # pragma: no cover - logview ships with the package
        pass
    else:
        logs = sub.add_parser("logs", help="filter the JSON log files")
        add_logs_arguments(logs)
        logs.set_defaults(handler=cmd_logs)
    for name in ("status", "orders", "fills", "positions", "incidents", "trace"):
        sub.choices[name].add_argument(
            "--ledger", default=argparse.SUPPRESS, help="read this ledger file instead of the config's"
        )
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
        return code
    except KeyboardInterrupt:
        return 130
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
