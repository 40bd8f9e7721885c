"""The inspection commands on the CLI: status, orders, fills, positions, incidents, trace and logs. Each
checks its arguments first, then reads the ledger opened read-only (a missing ledger is refused) and
shows human tables, or ``--json`` for machines."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from autoquant.ledger import LedgerReader
from autoquant.operator import inspection, render
from autoquant.operator.cli_common import EXIT_OK, EXIT_PROBLEM, since_ns, with_readonly
from autoquant.operator.daemon_view import daemon_status
from autoquant.runtime.config import Config

Build = Callable[[LedgerReader, argparse.Namespace, Config], Awaitable[Any]]

#: The commands that read a ledger and take ``--ledger`` after the command name too.
READERS = ("status", "orders", "fills", "positions", "incidents", "trace")


def _inspect(name: str, build: Build) -> Callable[[Config, argparse.Namespace, TextIO], int]:
    """An inspection command: arguments checked first, then the ledger read (read-only) and shown."""

    def command(config: Config, args: argparse.Namespace, out: TextIO) -> int:
        args.since_ns = since_ns(args)

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


def cmd_logs(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.operator.logview import logs_command

    return logs_command(args, config.logging, out)


def add_views(sub: Any) -> None:
    """status, orders, fills, positions, incidents."""
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


def add_trace(sub: Any) -> None:
    trace = sub.add_parser("trace", help="why did it do this? a decision, client or broker order id")
    trace.add_argument("id")
    trace.add_argument("--json", action="store_true", help="a JSON array of entries in time order")
    trace.set_defaults(handler=cmd_trace)


def add_logs(sub: Any) -> None:
    try:
        from autoquant.operator.logview import add_logs_arguments
    except ImportError:  # pragma: no cover - logview ships with the package
        return
    logs = sub.add_parser("logs", help="filter the JSON log files")
    add_logs_arguments(logs)
    logs.set_defaults(handler=cmd_logs)


def add_ledger_option(sub: Any) -> None:
    """``--ledger`` after the command name too, on every command that reads a ledger."""
    for name in READERS:
        sub.choices[name].add_argument(
            "--ledger", default=argparse.SUPPRESS, help="read this ledger file instead of the config's"
        )
