"""What every CLI command shares: exit codes, who is acting, times and numbers from arguments, and the
ledger opened for one command (for writing, or read-only for inspection)."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation

from autoquant.domain.values import to_ns
from autoquant.errors import AutoquantError
from autoquant.ledger import Ledger, LedgerReader
from autoquant.operator import inspection
from autoquant.runtime.config import Config

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


def since_ns(args: argparse.Namespace) -> int | None:
    return None if not getattr(args, "since", None) else parse_since(args.since)


def decimal_arg(value: str | None, flag: str) -> Decimal | None:
    """An optional decimal argument; a word that is not a number is refused naming its flag."""
    try:
        return None if value is None else Decimal(value)
    except InvalidOperation:
        raise AutoquantError(f"{flag} must be a decimal number, e.g. 10 or 187.25, got {value!r}") from None


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
