"""The operator's surface: ``autoquant [--config PATH] COMMAND``.

Every failure an operator can cause or fix (bad config, a ledger that is not one, a ledger held by a
running daemon, missing keys) ends in one line on stderr saying what is wrong and what to do, and a
non-zero exit. Commands that need a ledger create and migrate it on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from autoquant import config as config_module
from autoquant import doctor, inspection
from autoquant.config import Config
from autoquant.domain.controls import ACCOUNT, Control, ControlKind
from autoquant.domain.values import to_ns
from autoquant.errors import AutoquantError
from autoquant.ledger import Ledger

EXIT_OK, EXIT_PROBLEM, EXIT_ERROR = 0, 1, 2


def actor() -> str:
    try:
        return f"{getpass.getuser()}@cli"
    except Exception:  # getpass raises various errors where there is no user entry (containers)
        return "operator@cli"


def parse_since(text: str) -> int:
    """``10m``, ``2h``, ``1d`` ago, or an ISO-8601 time with a timezone; UTC nanoseconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units and text[:-1].isdigit():
        return to_ns(datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]]))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AutoquantError(f"--since {text!r}: use e.g. 10m, 2h, 1d or 2026-01-05T14:30:00Z") from None
    if moment.tzinfo is None:
        raise AutoquantError(f"--since {text!r} has no timezone: add Z or +00:00")
    return to_ns(moment)


def render(rows: Any, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    if isinstance(rows, dict):
        for key, value in rows.items():
            if isinstance(value, list | dict):
                value = json.dumps(value, default=str)
            out.write(f"{key:24} {value}\n")
        return
    if not rows:
        out.write("(none)\n")
        return
    columns = [k for k in rows[0] if not isinstance(rows[0][k], dict | list)]
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


async def with_ledger(config: Config, fn: Callable[[Ledger], Awaitable[int]]) -> int:
    ledger = await Ledger.open(config.ledger.path)
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


def _control(kind: ControlKind) -> Callable[[Config, argparse.Namespace, TextIO], int]:
    def command(config: Config, args: argparse.Namespace, out: TextIO) -> int:
        scope = getattr(args, "strategy", None) or ACCOUNT
        if scope != ACCOUNT and scope not in {s.id for s in config.strategies}:
            known = ", ".join(s.id for s in config.strategies) or "none"
            raise AutoquantError(f"--strategy {scope!r} is not a configured strategy (configured: {known})")
        reason = args.reason or f"{kind.value} by operator"
        control = Control(kind=kind, scope=scope, reason=reason, actor=actor(), local_ts_ns=time.time_ns())

        async def write(ledger: Ledger) -> int:
            await ledger.append_control(control)
            state = await ledger.control_state()
            out.write(
                f"{kind.value} recorded for {scope}: trading state {state.trading_state.value}, "
                f"paused: {', '.join(state.paused) or 'nothing'}\n"
            )
            return EXIT_OK

        return asyncio.run(with_ledger(config, write))

    return command


def _inspect(
    build: Callable[[Ledger, argparse.Namespace], Awaitable[Any]],
) -> Callable[[Config, argparse.Namespace, TextIO], int]:
    def command(config: Config, args: argparse.Namespace, out: TextIO) -> int:
        async def read(ledger: Ledger) -> int:
            render(await build(ledger, args), args.json, out)
            return EXIT_OK

        return asyncio.run(with_ledger(config, read))

    return command


def _since(args: argparse.Namespace) -> int | None:
    return None if not getattr(args, "since", None) else parse_since(args.since)


def cmd_run(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.workers.daemon import run_daemon

    return run_daemon(config)


def cmd_reconcile(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.workers.daemon import reconcile_once

    return reconcile_once(config, out)


def cmd_paper_server(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.brokers.paper.server import serve
    from autoquant.config import alpaca_secrets

    asyncio.run(serve(config, args.host, args.port, keys=alpaca_secrets()))
    return EXIT_OK


def cmd_logs(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from autoquant.logview import logs_command

    return logs_command(args, config.logging, out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autoquant", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument(
        "--config", help="TOML config file (else $AUTOQUANT_CONFIG, else config/autoquant.toml)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    status = sub.add_parser("status", help="trading state, pauses, last reconciliation, positions")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_inspect(lambda ledger, args: inspection.status(ledger)))

    orders = sub.add_parser("orders", help="orders with their current state")
    orders.add_argument("--open", action="store_true", help="only orders not yet final")
    orders.add_argument("--symbol")
    orders.add_argument("--since", help="10m, 2h, 1d or an ISO time")
    orders.add_argument("--json", action="store_true")
    orders.set_defaults(
        handler=_inspect(
            lambda ledger, args: inspection.orders(
                ledger, open_only=args.open, symbol=args.symbol, since_ns=_since(args)
            )
        )
    )

    fills = sub.add_parser("fills", help="executions, each counted once")
    fills.add_argument("--symbol")
    fills.add_argument("--since", help="10m, 2h, 1d or an ISO time")
    fills.add_argument("--json", action="store_true")
    fills.set_defaults(
        handler=_inspect(
            lambda ledger, args: inspection.fills(ledger, symbol=args.symbol, since_ns=_since(args))
        )
    )

    positions = sub.add_parser("positions", help="positions per strategy and symbol")
    positions.add_argument("--json", action="store_true")
    positions.set_defaults(handler=_inspect(lambda ledger, args: inspection.positions(ledger)))

    incidents = sub.add_parser("incidents", help="what the daemon could not explain, and what to do")
    incidents.add_argument("--open", action="store_true")
    incidents.add_argument("--json", action="store_true")
    incidents.set_defaults(
        handler=_inspect(lambda ledger, args: inspection.incidents(ledger, open_only=args.open))
    )

    trace = sub.add_parser("trace", help="why did it do this? a decision, client or broker order id")
    trace.add_argument("id")
    trace.add_argument("--json", action="store_true")
    trace.set_defaults(handler=_inspect(lambda ledger, args: inspection.trace(ledger, args.id)))

    paper = sub.add_parser("paper-server", help="serve the paper exchange as an Alpaca-compatible API")
    paper.add_argument("--host", default="127.0.0.1")
    paper.add_argument("--port", type=int, default=8765)
    paper.set_defaults(handler=cmd_paper_server)

    try:
        from autoquant.logview import add_logs_arguments
    except ImportError:  # pragma: no cover - logview ships with the package
        pass
    else:
        logs = sub.add_parser("logs", help="filter the JSON log files")
        add_logs_arguments(logs)
        logs.set_defaults(handler=cmd_logs)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        config = config_module.load(args.config)
        code: int = args.handler(config, args, stream)
        return code
    except AutoquantError as error:
        sys.stderr.write(f"autoquant: {error}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
