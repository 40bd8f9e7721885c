"""`autoquant replace` and `autoquant halt --flatten` through the real CLI: bad input is refused in one line
(exit 2) and changes nothing in the ledger; a good request is recorded for the running daemon."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.domain.ids import replacement_client_order_id
from autoquant.domain.orders import Order, OrderEvent, OrderEventKind
from autoquant.domain.values import OrderType, Side
from autoquant.ledger import Ledger
from tests.ledger_sql import query
from tests.operator.helpers import cli, one_line_error, write_config


def seed(ledger_path: Path) -> None:
    """One acknowledged limit buy (``lim-1``), one acknowledged market buy (``mkt-1``), one still reserved."""

    async def write() -> None:
        async with await Ledger.open(ledger_path) as ledger:
            for coid, order_type, limit in (
                ("lim-1", OrderType.LIMIT, Decimal(90)),
                ("mkt-1", OrderType.MARKET, None),
            ):
                await ledger.reserve(
                    Order(
                        client_order_id=coid,
                        strategy_id="s1",
                        symbol="AAPL",
                        side=Side.BUY,
                        qty=Decimal(5),
                        order_type=order_type,
                        limit_price=limit,
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
            await ledger.reserve(
                Order(client_order_id="res-1", strategy_id="s1", symbol="AAPL", side=Side.BUY, qty=Decimal(1))
            )

    asyncio.run(write())


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("lim-1", "--reason", "x"), ("--qty", "--limit-price", "--stop-price", "--trail")),
        (("lim-1", "--trail", "2", "--reason", "x"), ("lim-1", "limit order", "only a trailing stop")),
        (("lim-1", "--trail", "0", "--reason", "x"), ("trail", "positive")),
        (("lim-1", "--qty", "ten", "--reason", "x"), ("--qty", "decimal")),
        (("lim-1", "--qty", "-2", "--reason", "x"), ("qty", "positive")),
        (("lim-1", "--limit-price", "1.0000000001", "--reason", "x"), ("limit_price", "9 decimal places")),
        (("lim-1", "--stop-price", "91", "--reason", "x"), ("lim-1", "limit order", "no stop price")),
        (("mkt-1", "--limit-price", "91", "--reason", "x"), ("mkt-1", "market order", "no limit price")),
        (("lim-1", "--qty", "5", "--reason", " "), ("--reason",)),
        (("nope", "--qty", "2", "--reason", "x"), ("no order nope",)),
        (("res-1", "--qty", "2", "--reason", "x"), ("res-1", "not acknowledged")),
    ],
)
def test_a_bad_replace_is_refused_in_one_line_and_writes_nothing(
    tmp_path: Path, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    """Each wrong replace exits 2 with one line naming what is wrong; the ledger file is unchanged."""
    config = write_config(tmp_path)
    seed(tmp_path / "ledger.db")
    before = (tmp_path / "ledger.db").read_bytes()
    one_line_error(cli(config, "replace", *args), *needles)
    assert (tmp_path / "ledger.db").read_bytes() == before


def test_a_replace_is_recorded_for_the_daemon_under_the_id_it_will_send(tmp_path: Path) -> None:
    """A good replace records one request and names the replacement's client order id."""
    config = write_config(tmp_path)
    seed(tmp_path / "ledger.db")
    result = cli(config, "replace", "lim-1", "--qty", "3", "--limit-price", "91.5", "--reason", "tighter")
    assert result.returncode == 0, result.stderr
    rows = query(tmp_path / "ledger.db", "SELECT seq, kind, target, params_json, reason FROM broker_requests")
    assert [row[1:] for row in rows] == [
        ("replace", "lim-1", '{"limit_price": "91.5", "qty": "3"}', "tighter")
    ]
    assert replacement_client_order_id("lim-1", rows[0][0]) in result.stdout


def test_halt_flatten_records_the_halt_and_the_flatten(tmp_path: Path) -> None:
    """`halt --flatten` records the halt and one flatten request; plain `halt` records no flatten."""
    config = write_config(tmp_path)
    assert cli(config, "halt", "--reason", "plain").returncode == 0
    assert query(tmp_path / "ledger.db", "SELECT count(*) FROM broker_requests") == [(0,)]
    result = cli(config, "halt", "--flatten", "--reason", "get out")
    assert result.returncode == 0, result.stderr
    assert "flatten requested" in result.stdout
    assert query(tmp_path / "ledger.db", "SELECT kind, target, reason FROM broker_requests") == [
        ("flatten", "*", "get out")
    ]
