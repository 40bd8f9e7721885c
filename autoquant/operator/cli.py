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
import getpass
import os
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from autoquant.domain.controls import ControlKind
from autoquant.domain.values import to_ns
from autoquant.errors import AutoquantError
from autoquant.ledger import Ledger, LedgerReader
from autoquant.operator import commands, inspection, render
from autoquant.operator.daemon_view import daemon_status
from autoquant.operator.doctor import cmd_doctor, doctor_command
from autoquant.research import commands as research_commands
from autoquant.runtime import config as config_module
from autoquant.runtime.config import Config, LedgerSettings
from autoquant.runtime.paper_options import add_arguments as paper_arguments

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


def _control(kind: ControlKind) -> Callable[[Config, argparse.Namespace, TextIO], int]:
    """pause, resume, halt, reduce: the command layer's checks and act (the HTTP API runs the same)."""

    def command(config: Config, args: argparse.Namespace, out: TextIO) -> int:
        control = commands.check_control(
            kind,
            scope=getattr(args, "strategy", None),
            reason=args.reason,
            actor=actor(),
            now_ns=time.time_ns(),
            strategy_ids=[s.id for s in config.strategies],
        )

        async def write(ledger: Ledger) -> int:
            outcome = await commands.apply_control(ledger, control, force=getattr(args, "force", False))
            out.write(outcome.message + "\n")
            if getattr(args, "flatten", False):
                flattened = await commands.flatten(ledger, control.reason, control.actor, control.local_ts_ns)
                out.write(flattened.message + "\n")
            return EXIT_OK

        return asyncio.run(with_ledger(config, write))

    return command


def cmd_resolve(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """Record that an operator dealt with an incident; pauses and halts stay until ``resume``."""
    incident_id, note = commands.check_resolve(args.incident_id, args.note)
    if not config.ledger.path.exists():
        raise AutoquantError(f"no ledger at {config.ledger.path}: there are no incidents to resolve")

    async def write(ledger: Ledger) -> int:
        out.write((await commands.resolve(ledger, incident_id, note, actor(), time.time_ns())).message + "\n")
        return EXIT_OK

    return asyncio.run(with_ledger(config, write))


def cmd_cancel(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """Ask the running daemon to cancel one order or all open orders (it obeys in any trading state)."""
    target, reason = commands.check_cancel(args.client_order_id, args.all, args.reason)
    if not config.ledger.path.exists():
        raise AutoquantError(f"no ledger at {config.ledger.path}: there are no orders to cancel")

    async def write(ledger: Ledger) -> int:
        out.write((await commands.cancel(ledger, target, reason, actor(), time.time_ns())).message + "\n")
        return EXIT_OK

    return asyncio.run(with_ledger(config, write))


def cmd_replace(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """Ask the running daemon to replace an open order by new terms (it sends it at most once)."""
    from decimal import Decimal, InvalidOperation

    def number(value: str | None, flag: str) -> Decimal | None:
        try:
            return None if value is None else Decimal(value)
        except InvalidOperation:
            raise AutoquantError(
                f"{flag} must be a decimal number, e.g. 10 or 187.25, got {value!r}"
            ) from None

    terms = commands.check_replace(
        args.client_order_id,
        qty=number(args.qty, "--qty"),
        limit_price=number(args.limit_price, "--limit-price"),
        stop_price=number(args.stop_price, "--stop-price"),
        reason=args.reason,
    )
    if not config.ledger.path.exists():
        raise AutoquantError(f"no ledger at {config.ledger.path}: there are no orders to replace")

    async def write(ledger: Ledger) -> int:
        out.write((await commands.replace(ledger, terms, actor(), time.time_ns())).message + "\n")
        return EXIT_OK

    return asyncio.run(with_ledger(config, write))


def cmd_order(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """A manual order, carried out by the running daemon (reserve, risk check, send); the id is the
    idempotency key: running the same command twice places one order."""
    from decimal import Decimal, InvalidOperation

    try:
        qty = Decimal(args.qty)
        limit = None if args.limit_price is None else Decimal(args.limit_price)
    except InvalidOperation:
        raise AutoquantError("--qty and --limit-price must be decimal numbers, e.g. 10 or 187.25") from None
    order = commands.check_manual_order(
        client_order_id=args.client_order_id,
        strategy_id=args.strategy,
        symbol=args.symbol,
        side=args.side,
        qty=qty,
        order_type="market" if limit is None else "limit",
        time_in_force=args.time_in_force,
        limit_price=limit,
        reason=args.reason,
        actor=actor(),
        now_ns=time.time_ns(),
        strategy_ids=[s.id for s in config.strategies],
        symbols=config.marketdata.symbols,
    )

    async def write(ledger: Ledger) -> int:
        out.write((await commands.submit_manual_order(ledger, order)).message + "\n")
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
            elif name == "positions":
                out.write(
                    "\n".join(render.positions_lines(value, terminal=render.terminal_width(out))) + "\n"
                )
            else:
                render.write_table(value, name, out)
            return EXIT_OK

        return asyncio.run(with_readonly(config, read))

    return command


async def _status(ledger: LedgerReader, args: argparse.Namespace, config: Config) -> Any:
    from autoquant.runtime.daemon import heartbeat_path

    return await inspection.status(ledger, heartbeat_path(config.ledger.path.resolve()))


async def _positions(ledger: LedgerReader, args: argparse.Namespace, config: Config) -> Any:
    """Rows for --json; for people, the rows with the account and today's P&L."""
    from autoquant.runtime.daemon import heartbeat_path

    now = time.time_ns()
    bars = inspection.bar_marks(daemon_status(heartbeat_path(config.ledger.path.resolve()), now))
    rows = await inspection.positions(ledger, bars)
    if args.json:
        return rows
    pnl = await inspection.pnl_today(ledger, now, bars)
    return {"rows": rows, "account": await inspection.account(ledger), "pnl_today": pnl}


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
    for name, kind, help_text in (
        ("pause", ControlKind.PAUSE, "stop new orders (account or one strategy)"),
        ("resume", ControlKind.RESUME, "lift a pause or halt (an operator's act; nothing resumes by itself)"),
        ("halt", ControlKind.HALT, "kill switch: refuse all new orders until resume"),
        ("reduce", ControlKind.REDUCE, "accept only orders that shrink exposure until resume"),
    ):
        command = sub.add_parser(name, help=help_text)
        if kind in (ControlKind.PAUSE, ControlKind.RESUME):
            command.add_argument("--strategy", help="a strategy id (default: the whole account)")
        command.add_argument("--reason", required=True, help="why (recorded)")
        if kind is ControlKind.RESUME:
            command.add_argument(
                "--force", action="store_true", help="resume even while incidents are open (they are listed)"
            )
        if kind is ControlKind.HALT:
            command.add_argument(
                "--flatten", action="store_true", help="also cancel every open order and close every position"
            )
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

    positions = sub.add_parser(
        "positions", help="positions marked at the latest bar (else the last fill), cash, equity, P&L today"
    )
    positions.add_argument("--json", action="store_true", help="a JSON array (Decimals as strings)")
    positions.set_defaults(handler=_inspect("positions", _positions))

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

    replace = sub.add_parser("replace", help="replace an open order by new terms (same decision, new order)")
    replace.add_argument("client_order_id", metavar="CLIENT_ORDER_ID")
    replace.add_argument("--qty", help="the new quantity")
    replace.add_argument("--limit-price", help="the new limit price (limit and stop-limit orders)")
    replace.add_argument("--stop-price", help="the new stop price (stop and stop-limit orders)")
    replace.add_argument("--reason", required=True, help="why (recorded)")
    replace.set_defaults(handler=cmd_replace)

    order = sub.add_parser("order", help="a manual order, sent by the running daemon through the risk gate")
    order.add_argument("client_order_id", metavar="CLIENT_ORDER_ID", help="your id for it (idempotency key)")
    order.add_argument("--symbol", required=True)
    order.add_argument("--side", required=True, choices=["buy", "sell"])
    order.add_argument("--qty", required=True)
    order.add_argument("--limit-price", help="a limit order at this price (default: market)")
    order.add_argument("--time-in-force", default="day", choices=["day", "gtc", "ioc", "fok"])
    order.add_argument("--strategy", help="book it to a configured strategy (default: operator)")
    order.add_argument("--reason", required=True, help="why (recorded)")
    order.set_defaults(handler=cmd_order)

    resolve = sub.add_parser("resolve", help="record that an incident was dealt with")
    resolve.add_argument("incident_id", metavar="INCIDENT_ID")
    resolve.add_argument("--note", required=True, help="what was done (recorded)")
    resolve.set_defaults(handler=cmd_resolve)

    trace = sub.add_parser("trace", help="why did it do this? a decision, client or broker order id")
    trace.add_argument("id")
    trace.add_argument("--json", action="store_true", help="a JSON array of entries in time order")
    trace.set_defaults(handler=cmd_trace)

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
