"""`autoquant order` takes every order type a strategy intent takes, checked by the domain's own rules:
a bad combination is refused in one line naming the field (exit 2) and changes nothing in the ledger; a
good one is recorded with exactly its terms; `autoquant orders` and `autoquant trace` show a notional
order's dollars until it has a quantity, then the quantity it filled."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.domain.orders import Order, OrderEvent, OrderEventKind
from autoquant.domain.values import OrderType, Side
from autoquant.ledger import Ledger
from tests.ledger_sql import query
from tests.operator.helpers import cli, one_line_error, write_config

BASE = ("--symbol", "AAPL", "--side", "buy", "--reason", "test")

#: (arguments after the id, what the one line must say). Shared with the HTTP test of the same rules.
REFUSED: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("--type", "trailing_stop", "--qty", "1"), ("trailing_stop", "trail_price and trail_percent")),
    (("--qty", "1", "--trail-price", "2", "--trail-percent", "1"), ("exactly one of trail_price",)),
    (
        ("--qty", "1", "--type", "limit", "--limit-price", "90", "--trail-price", "2"),
        ("only for trailing_stop",),
    ),
    (("--qty", "1", "--trail-percent", "100"), ("trail_percent must be below 100",)),
    (
        ("--qty", "1", "--trail-price", "2", "--time-in-force", "ioc"),
        ("trailing_stop order must be day or gtc",),
    ),
    (("--notional", "250", "--limit-price", "90"), ("notional order must be a market order",)),
    (("--notional", "250", "--time-in-force", "gtc"), ("notional order must be a market order",)),
    (("--notional", "250", "--qty", "1"), ("either qty or notional",)),
    ((), ("qty must be greater than 0", "notional")),
    (("--qty", "1", "--stop-price", "95", "--time-in-force", "opg"), ("opg is for market and limit orders",)),
    (("--qty", "1.5", "--time-in-force", "cls"), ("cls takes whole-share quantities",)),
    (("--qty", "1", "--extended-hours"), ("extended_hours is for limit orders",)),
    (("--qty", "1", "--type", "stop"), ("stop_price is required for a stop order",)),
    (("--qty", "1", "--type", "stop_limit", "--stop-price", "95"), ("limit_price is required",)),
    (("--qty", "1", "--type", "market", "--stop-price", "95"), ("stop_price is only for stop",)),
    (("--qty", "ten"), ("--qty must be a decimal number",)),
    (("--notional", "-5"), ("notional",)),
]


@pytest.mark.parametrize(("extra", "needles"), REFUSED)
def test_bad_terms_are_refused_in_one_line_and_write_nothing(
    tmp_path: Path, extra: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    """Each bad combination exits 2 with one line naming what is wrong; the ledger file is unchanged."""
    config = write_config(tmp_path)
    assert cli(config, "migrate").returncode == 0
    before = (tmp_path / "ledger.db").read_bytes()
    one_line_error(cli(config, "order", "m-1", *BASE, *extra), *needles)
    assert (tmp_path / "ledger.db").read_bytes() == before


#: (id, arguments, the manual_orders row's terms) for every order type.
ACCEPTED = [
    ("stop-1", ("--qty", "2", "--stop-price", "95"), ("2", "stop", "day", None, "95", None, None, None, 0)),
    (
        "sl-1",
        ("--qty", "2", "--stop-price", "95", "--limit-price", "96", "--time-in-force", "gtc"),
        ("2", "stop_limit", "gtc", "96", "95", None, None, None, 0),
    ),
    (
        "tp-1",
        ("--qty", "2", "--trail-price", "1.5"),
        ("2", "trailing_stop", "day", None, None, None, "1.5", None, 0),
    ),
    (
        "tpc-1",
        ("--qty", "2", "--trail-percent", "2.5", "--time-in-force", "gtc"),
        ("2", "trailing_stop", "gtc", None, None, None, None, "2.5", 0),
    ),
    ("not-1", ("--notional", "250"), ("0", "market", "day", None, None, "250", None, None, 0)),
    (
        "opg-1",
        ("--qty", "3", "--time-in-force", "opg"),
        ("3", "market", "opg", None, None, None, None, None, 0),
    ),
    (
        "cls-1",
        ("--qty", "3", "--limit-price", "90", "--time-in-force", "cls"),
        ("3", "limit", "cls", "90", None, None, None, None, 0),
    ),
    (
        "ext-1",
        ("--qty", "1", "--limit-price", "90", "--extended-hours"),
        ("1", "limit", "day", "90", None, None, None, None, 1),
    ),
]


def test_every_order_type_is_recorded_with_its_terms(tmp_path: Path) -> None:
    """stop, stop_limit, trailing stops by price and percent, notional, opg, cls and extended hours: each
    recorded once with exactly the terms given (the type implied by the prices when --type is left out)."""
    config = write_config(tmp_path)
    for coid, extra, _ in ACCEPTED:
        result = cli(config, "order", coid, *BASE, *extra)
        assert result.returncode == 0 and f"order {coid} requested" in result.stdout, result
    rows = query(
        tmp_path / "ledger.db",
        "SELECT client_order_id, qty, order_type, time_in_force, limit_price, stop_price, notional,"
        " trail_price, trail_percent, extended_hours FROM manual_orders ORDER BY seq",
    )
    assert rows == [(coid, *terms) for coid, _, terms in ACCEPTED]
    again = cli(config, "order", "not-1", *BASE, "--notional", "250")
    assert again.returncode == 0 and "already requested" in again.stdout
    other = cli(config, "order", "not-1", *BASE, "--notional", "300")
    one_line_error(other, "not-1", "already names a different order", "$250.00 notional")


def seed_notional_orders(ledger_path: Path) -> None:
    """``n-open``: an acknowledged $250 notional buy not filled yet; ``n-done``: a $100 one filled 0.5."""

    async def write() -> None:
        async with await Ledger.open(ledger_path) as ledger:
            for coid, dollars in (("n-open", "250"), ("n-done", "100")):
                await ledger.reserve(
                    Order(
                        client_order_id=coid,
                        strategy_id="operator",
                        symbol="AAPL",
                        side=Side.BUY,
                        qty=Decimal(0),
                        order_type=OrderType.MARKET,
                        notional=Decimal(dollars),
                        created_ns=time.time_ns(),
                    )
                )
                await ledger.apply_event(
                    OrderEvent(
                        client_order_id=coid,
                        kind=OrderEventKind.ACCEPTED,
                        broker_order_id=f"b-{coid}",
                        local_ts_ns=time.time_ns(),
                    )
                )
            await ledger.apply_event(
                OrderEvent(
                    client_order_id="n-done",
                    kind=OrderEventKind.FILL,
                    filled_qty=Decimal("0.5"),
                    local_ts_ns=time.time_ns(),
                )
            )

    asyncio.run(write())


def test_orders_and_trace_show_a_notional_orders_dollars_until_it_has_a_qty(tmp_path: Path) -> None:
    """`autoquant orders` shows `$250.00 notional` for an open notional order and the filled qty of a
    filled one (JSON: qty null and the notional until then); `autoquant trace` says the dollars too."""
    config = write_config(tmp_path)
    seed_notional_orders(tmp_path / "ledger.db")
    table = cli(config, "orders")
    assert table.returncode == 0, table.stderr
    lines = {line.split()[0]: line for line in table.stdout.splitlines()[1:]}
    assert lines["n-open"].split()[5:7] == ["$250.00", "notional"], lines["n-open"]
    assert lines["n-done"].split()[5] == "0.5", lines["n-done"]
    rows = {row["client_order_id"]: row for row in json.loads(cli(config, "orders", "--json").stdout)}
    assert (rows["n-open"]["qty"], rows["n-open"]["notional"]) == (None, "250")
    assert (rows["n-done"]["qty"], rows["n-done"]["filled_qty"]) == ("0.5", "0.5")
    trace = cli(config, "trace", "n-open")
    assert trace.returncode == 0 and "buy $250.00 notional AAPL market" in trace.stdout, trace.stdout
