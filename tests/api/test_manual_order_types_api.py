"""`POST /api/v1/orders/submit` takes every order type `autoquant order` takes, through the same check:
each bad combination is a 422 naming the field with the very line the CLI prints (exit 2), and
neither face writes anything for it; a good request is recorded with its terms."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from autoquant.operator.cli import build_parser, main
from autoquant.operator.cli_acts import order_type_of
from tests.api.conftest import TOKEN
from tests.ledger_sql import query
from tests.operator.test_manual_order_types import BASE, REFUSED, seed_notional_orders

AUTH = {"Authorization": f"Bearer {TOKEN}"}
TERMS = ("qty", "notional", "limit_price", "stop_price", "trail_price", "trail_percent")


def body_of(extra: tuple[str, ...]) -> dict[str, Any]:
    """The JSON body that asks for what ``autoquant order m-1 … EXTRA`` asks for (the type implied by
    the prices as the CLI implies it)."""
    args = build_parser().parse_args(["order", "m-1", *BASE, *extra])
    body: dict[str, Any] = {
        "client_order_id": "m-1",
        "symbol": args.symbol,
        "side": args.side,
        "reason": args.reason,
        "order_type": order_type_of(args),
        "time_in_force": args.time_in_force,
        "extended_hours": args.extended_hours,
    }
    return body | {name: getattr(args, name) for name in TERMS if getattr(args, name) is not None}


#: The CLI's decimal parsing ("ten") has no JSON counterpart: JSON numbers are parsed by the API.
SHARED = [(extra, needles) for extra, needles in REFUSED if "ten" not in extra]


@pytest.mark.parametrize("lone_api_process", ["writes_per_minute = 600\n"], indirect=True)
def test_http_and_cli_refuse_bad_terms_with_the_same_line(
    lone_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every bad combination: 422 naming the field, the same message as the CLI's one line; nothing
    recorded by either. (The CLI runs in this process: `test_manual_order_types` already runs each case
    through `autoquant` as a process.)"""
    for extra, needles in SHARED:
        answer = httpx.post(f"{lone_api}/api/v1/orders/submit", json=body_of(extra), headers=AUTH)
        assert answer.status_code == 422, (extra, answer.text)
        error = answer.json()
        assert all(needle in error["error"] for needle in needles), (extra, error)
        assert error["field"] in (*TERMS, "order_type", "time_in_force", "extended_hours"), error
        assert error["field"] in error["error"] or error["field"] == "time_in_force", error
        capsys.readouterr()
        code = main(["--config", str(tmp_path / "autoquant.toml"), "order", "m-1", *BASE, *extra])
        stderr = capsys.readouterr().err
        assert code == 2 and stderr == f"autoquant: {error['error']}\n", (extra, stderr)
    assert query(tmp_path / "ledger.db", "SELECT count(*) FROM manual_orders") == [(0,)]


@pytest.mark.parametrize("lone_api_process", ["writes_per_minute = 600\n"], indirect=True)
def test_http_records_every_order_type_with_its_terms(lone_api: str, tmp_path: Path) -> None:
    """A trailing stop by percent, a stop-limit and a notional order over HTTP are recorded with exactly
    their terms; the notional one again with other dollars is 409 naming both."""
    requests: list[dict[str, object]] = [
        {"client_order_id": "h-tp", "qty": "2", "order_type": "trailing_stop", "trail_percent": "1.5"},
        {"client_order_id": "h-sl", "qty": "2", "order_type": "stop_limit", "stop_price": "95",
         "limit_price": "96", "time_in_force": "gtc"},
        {"client_order_id": "h-not", "notional": "250"},
        {"client_order_id": "h-ext", "qty": "1", "order_type": "limit", "limit_price": "90",
         "extended_hours": True},
    ]  # fmt: skip
    for request in requests:
        body: dict[str, object] = {"symbol": "AAPL", "side": "buy", "reason": "test"}
        body |= request
        answer = httpx.post(f"{lone_api}/api/v1/orders/submit", json=body, headers=AUTH)
        assert answer.status_code == 202, answer.text
    rows = query(
        tmp_path / "ledger.db",
        "SELECT client_order_id, qty, order_type, time_in_force, limit_price, stop_price, notional,"
        " trail_price, trail_percent, extended_hours FROM manual_orders ORDER BY seq",
    )
    assert rows == [
        ("h-tp", "2", "trailing_stop", "day", None, None, None, None, "1.5", 0),
        ("h-sl", "2", "stop_limit", "gtc", "96", "95", None, None, None, 0),
        ("h-not", "0", "market", "day", None, None, "250", None, None, 0),
        ("h-ext", "1", "limit", "day", "90", None, None, None, None, 1),
    ]
    other = httpx.post(
        f"{lone_api}/api/v1/orders/submit",
        json={"client_order_id": "h-not", "symbol": "AAPL", "side": "buy", "reason": "x", "notional": "300"},
        headers=AUTH,
    )
    assert other.status_code == 409 and "$250.00 notional" in other.json()["error"], other.text
    assert Decimal(rows[2][6]) == Decimal("250")


def test_the_status_page_and_orders_route_show_a_notional_orders_dollars(
    lone_api: str, tmp_path: Path
) -> None:
    """An open notional order: `$250.00 notional` on the status page, qty null and notional set on
    /api/v1/orders; a filled one its filled qty."""
    seed_notional_orders(tmp_path / "ledger.db")
    page = httpx.get(f"{lone_api}/", params={"token": TOKEN})
    assert page.status_code == 200 and "$250.00 notional" in page.text, page.text
    rows = {
        o["client_order_id"]: o for o in httpx.get(f"{lone_api}/api/v1/orders", headers=AUTH).json()["orders"]
    }
    assert (rows["n-open"]["qty"], rows["n-open"]["notional"]) == (None, "250")
    assert rows["n-done"]["qty"] == "0.5"
