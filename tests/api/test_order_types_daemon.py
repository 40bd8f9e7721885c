"""Manual orders of the further types against a real daemon with its API: `orders/simulate` reports the
price the risk gate counts each type at, and `orders/submit` sends a notional order, a stop and a
trailing stop through reserve → risk gate → exchange; `/api/v1/orders` shows the notional order's dollars
and, once filled, the quantity it filled."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.api.conftest import ApiDaemon
from tests.e2e.daemon_harness import wait_for

BUY = {"strategy_id": "sma-aapl", "symbol": "AAPL", "side": "buy"}


def simulate(api: ApiDaemon, **terms: Any) -> dict[str, Any]:
    answer = api.post("/api/v1/orders/simulate", BUY | terms)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_simulate_reports_the_gates_basis_for_every_type(api_daemon: ApiDaemon) -> None:
    """market: the last price; limit and stop: their price; a trailing buy: last + trail (dollars or
    percent); notional: its own dollars. Bad terms are a 422 naming the field, as orders/submit says."""
    wait_for(lambda: api_daemon.get("/api/v1/bars/AAPL").json()["bars"], 30, "a recorded bar")
    market = simulate(api_daemon, qty="1")
    last = Decimal(market["prices"]["AAPL"])
    assert market["basis"] == {"price": str(last), "source": "last price", "qty": "1", "notional": str(last)}
    limit = simulate(api_daemon, qty="2", order_type="limit", limit_price="1.5")["basis"]
    assert (limit["price"], limit["source"], limit["notional"]) == ("1.5", "limit_price", "3.0")
    stop = simulate(api_daemon, qty="1", order_type="stop", stop_price="9000")
    assert (stop["basis"]["price"], stop["basis"]["source"]) == ("9000", "stop_price")
    assert stop["allowed"] is True and "order notional 9000" in next(
        c["detail"] for c in stop["checks"] if c["name"] == "max_order_notional"
    )
    trail = simulate(api_daemon, qty="1", order_type="trailing_stop", trail_price="2")
    price = Decimal(trail["basis"]["price"])
    assert (
        price == Decimal(trail["prices"]["AAPL"]) + 2
        and trail["basis"]["source"] == "last price + trail_price"
    )
    percent = simulate(api_daemon, qty="1", order_type="trailing_stop", trail_percent="10")["basis"]
    assert percent["source"] == "last price + trail_percent" and Decimal(percent["price"]) > last
    notional = simulate(api_daemon, notional="250")
    assert notional["basis"]["notional"] == "250" and notional["basis"]["source"] == "last price"
    order_check = next(c for c in notional["checks"] if c["name"] == "max_order_notional")
    assert order_check["detail"].startswith("order notional 250 ") and order_check["passed"]
    huge = simulate(api_daemon, notional="20000")
    assert huge["allowed"] is False and "max_order_notional" in huge["reason"]
    bad = api_daemon.post("/api/v1/orders/simulate", BUY | {"qty": "1", "order_type": "trailing_stop"})
    assert bad.status_code == 422 and bad.json()["field"] == "trail_price", bad.text
    assert "exactly one of trail_price and trail_percent" in bad.json()["error"]


def order_row(api: ApiDaemon, client_order_id: str) -> dict[str, Any] | None:
    rows = [o for o in api.get("/api/v1/orders").json()["orders"] if o["client_order_id"] == client_order_id]
    return rows[0] if rows else None


def test_notional_stop_and_trailing_orders_reach_the_exchange(api_daemon: ApiDaemon) -> None:
    """A $50 notional buy fills and then shows the qty it filled; a stop and a trailing stop far from the
    market rest accepted with their terms; the CLI's table says the same."""
    base = {"symbol": "MSFT", "side": "buy", "reason": "order types e2e"}
    placed = [
        base | {"client_order_id": "ot-notional", "notional": "50"},
        base | {"client_order_id": "ot-stop", "qty": "1", "order_type": "stop", "stop_price": "9000",
                "time_in_force": "gtc"},
        base | {"client_order_id": "ot-trail", "qty": "1", "order_type": "trailing_stop",
                "trail_price": "5000", "time_in_force": "gtc"},
    ]  # fmt: skip
    for body in placed:
        answer = api_daemon.post("/api/v1/orders/submit", body)
        assert answer.status_code == 202, answer.text

    def status_is(client_order_id: str, status: str) -> dict[str, Any] | None:
        row = order_row(api_daemon, client_order_id)
        return row if row is not None and row["status"] == status else None

    filled = wait_for(lambda: status_is("ot-notional", "filled"), 30, "the notional order's fill")
    assert filled["notional"] == "50" and Decimal(filled["qty"]) == Decimal(filled["filled_qty"]) > 0
    assert Decimal(filled["qty"]) * Decimal(filled["avg_fill_price"]) <= Decimal("50.01")
    stop = wait_for(lambda: status_is("ot-stop", "accepted"), 30, "the stop order accepted")
    assert (stop["order_type"], stop["stop_price"], stop["qty"]) == ("stop", "9000", "1")
    trail = wait_for(lambda: status_is("ot-trail", "accepted"), 30, "the trailing stop accepted")
    assert trail["order_type"] == "trailing_stop"
    table = api_daemon.daemon.cli("orders", "--symbol", "MSFT")
    line = next(line for line in table.stdout.splitlines() if line.startswith("ot-notional"))
    assert line.split()[5] == filled["qty"] and "$" not in line, line
    for coid in ("ot-stop", "ot-trail"):
        assert (
            api_daemon.post("/api/v1/cancel", {"client_order_id": coid, "reason": "tidy"}).status_code == 200
        )
    wait_for(lambda: status_is("ot-trail", "canceled"), 30, "the trailing stop canceled")
