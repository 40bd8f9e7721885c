"""The operator's acts on the CLI: pause, resume, halt, reduce, cancel, replace, manual orders and
resolve, each a thin face over ``operator.commands`` (the HTTP API runs the same checks and acts)."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any, TextIO

from autoquant.domain.controls import ControlKind
from autoquant.domain.values import OrderType, TimeInForce
from autoquant.errors import AutoquantError
from autoquant.ledger import Ledger
from autoquant.operator import commands, manual
from autoquant.operator.cli_common import EXIT_OK, actor, decimal_arg, with_ledger
from autoquant.runtime.config import Config

Handler = Callable[[Config, argparse.Namespace, TextIO], int]


def _control(kind: ControlKind) -> Handler:
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


def _existing_ledger(config: Config, what: str) -> None:
    if not config.ledger.path.exists():
        raise AutoquantError(f"no ledger at {config.ledger.path}: there are no {what}")


def cmd_resolve(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """Record that an operator dealt with an incident; pauses and halts stay until ``resume``."""
    incident_id, note = commands.check_resolve(args.incident_id, args.note)
    _existing_ledger(config, "incidents to resolve")

    async def write(ledger: Ledger) -> int:
        out.write((await commands.resolve(ledger, incident_id, note, actor(), time.time_ns())).message + "\n")
        return EXIT_OK

    return asyncio.run(with_ledger(config, write))


def cmd_cancel(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """Ask the running daemon to cancel one order or all open orders (it obeys in any trading state)."""
    target, reason = commands.check_cancel(args.client_order_id, args.all, args.reason)
    _existing_ledger(config, "orders to cancel")

    async def write(ledger: Ledger) -> int:
        out.write((await commands.cancel(ledger, target, reason, actor(), time.time_ns())).message + "\n")
        return EXIT_OK

    return asyncio.run(with_ledger(config, write))


def cmd_replace(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """Ask the running daemon to replace an open order by new terms (it sends it at most once)."""
    terms = commands.check_replace(
        args.client_order_id,
        qty=decimal_arg(args.qty, "--qty"),
        limit_price=decimal_arg(args.limit_price, "--limit-price"),
        stop_price=decimal_arg(args.stop_price, "--stop-price"),
        reason=args.reason,
        trail=decimal_arg(args.trail, "--trail"),
    )
    _existing_ledger(config, "orders to replace")

    async def write(ledger: Ledger) -> int:
        out.write((await commands.replace(ledger, terms, actor(), time.time_ns())).message + "\n")
        return EXIT_OK

    return asyncio.run(with_ledger(config, write))


def order_type_of(args: argparse.Namespace) -> str:
    """``--type``, else what the prices given imply: a trail makes a trailing stop, a stop price a stop
    (a stop-limit with a limit price too), a limit price a limit order; nothing, a market order."""
    if args.type is not None:
        return str(args.type)
    if args.trail_price is not None or args.trail_percent is not None:
        return OrderType.TRAILING_STOP.value
    if args.stop_price is not None:
        return (OrderType.STOP_LIMIT if args.limit_price is not None else OrderType.STOP).value
    return (OrderType.LIMIT if args.limit_price is not None else OrderType.MARKET).value


def cmd_order(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """A manual order, carried out by the running daemon (reserve, risk check, send); the id is the
    idempotency key: running the same command twice places one order."""
    terms = manual.OrderTerms(
        qty=decimal_arg(args.qty, "--qty"),
        order_type=order_type_of(args),
        time_in_force=args.time_in_force,
        limit_price=decimal_arg(args.limit_price, "--limit-price"),
        stop_price=decimal_arg(args.stop_price, "--stop-price"),
        notional=decimal_arg(args.notional, "--notional"),
        trail_price=decimal_arg(args.trail_price, "--trail-price"),
        trail_percent=decimal_arg(args.trail_percent, "--trail-percent"),
        extended_hours=args.extended_hours,
    )
    order = manual.check_manual_order(
        client_order_id=args.client_order_id,
        strategy_id=args.strategy,
        symbol=args.symbol,
        side=args.side,
        terms=terms,
        reason=args.reason,
        actor=actor(),
        now_ns=time.time_ns(),
        strategy_ids=[s.id for s in config.strategies],
        symbols=config.marketdata.symbols,
    )

    async def write(ledger: Ledger) -> int:
        out.write((await manual.submit_manual_order(ledger, order)).message + "\n")
        return EXIT_OK

    return asyncio.run(with_ledger(config, write))


def add_controls(sub: Any) -> None:
    """pause, resume, halt, reduce."""
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


def _add_order(sub: Any) -> None:
    order = sub.add_parser(
        "order",
        help="a manual order, sent by the running daemon through the risk gate",
        description="A manual order of any type a strategy can place, checked by the same rules; the "
        "running daemon reserves it, runs the risk gate on it and sends it. Without --type the prices "
        "given say the type: --trail-price/--trail-percent a trailing stop, --stop-price a stop (with "
        "--limit-price a stop-limit), --limit-price a limit order, none a market order.",
    )
    order.add_argument("client_order_id", metavar="CLIENT_ORDER_ID", help="your id for it (idempotency key)")
    order.add_argument("--symbol", required=True)
    order.add_argument("--side", required=True, choices=["buy", "sell"])
    order.add_argument("--qty", help="shares (or --notional)")
    order.add_argument("--notional", help="dollars instead of --qty (a market order, time in force day)")
    order.add_argument("--type", choices=[t.value for t in OrderType], help="default: from the prices given")
    order.add_argument("--limit-price", help="a limit (or stop-limit) order at this price")
    order.add_argument("--stop-price", help="a stop (or stop-limit) order triggered at this price")
    order.add_argument("--trail-price", help="a trailing stop this many dollars from the mark")
    order.add_argument("--trail-percent", help="a trailing stop this many percent from the mark")
    order.add_argument("--time-in-force", default="day", choices=[t.value for t in TimeInForce])
    order.add_argument(
        "--extended-hours", action="store_true", help="a limit order eligible outside the session (day, gtc)"
    )
    order.add_argument("--strategy", help="book it to a configured strategy (default: operator)")
    order.add_argument("--reason", required=True, help="why (recorded)")
    order.set_defaults(handler=cmd_order)


def add_order_acts(sub: Any) -> None:
    """cancel, replace, order, resolve."""
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
    replace.add_argument(
        "--trail",
        help="a trailing stop's new trail, in its own unit: dollars (a --trail-price order) or percent",
    )
    replace.add_argument("--reason", required=True, help="why (recorded)")
    replace.set_defaults(handler=cmd_replace)

    _add_order(sub)

    resolve = sub.add_parser("resolve", help="record that an incident was dealt with")
    resolve.add_argument("incident_id", metavar="INCIDENT_ID")
    resolve.add_argument("--note", required=True, help="what was done (recorded)")
    resolve.set_defaults(handler=cmd_resolve)
