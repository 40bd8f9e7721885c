"""The paper server's routes beyond orders behave as Alpaca's: replace, closing positions, assets, the
NYSE calendar and clock, account configurations, portfolio history and the rate-limit headers; the
real alpaca-py TradingClient parses every one of them."""

from __future__ import annotations

import asyncio
import datetime as dt
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from autoquant.brokers.paper.alpaca_json import asset_id
from autoquant.brokers.paper.sessions import nyse
from autoquant.clocks import FakeClock
from autoquant.runtime.paper_server import PaperServer
from tests.brokers.server_harness import TEST_KEYS, paper_config, paper_server, wait_until

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="websockets.legacy is deprecated", category=DeprecationWarning)
    from alpaca.common.exceptions import APIError
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide
    from alpaca.trading.models import AccountConfiguration, Asset, Calendar, Order, PortfolioHistory
    from alpaca.trading.requests import (
        ClosePositionRequest,
        GetCalendarRequest,
        GetPortfolioHistoryRequest,
        ReplaceOrderRequest,
    )

HEADERS = {"APCA-API-KEY-ID": TEST_KEYS.key_id, "APCA-API-SECRET-KEY": TEST_KEYS.secret_key}
NY = dt.timezone(dt.timedelta(hours=-5))


def order_body(**changes: Any) -> dict[str, Any]:
    body = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
    return {**body, **changes}


@asynccontextmanager
async def client_for(server: PaperServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=10) as client:
        yield client


@asynccontextmanager
async def served(
    tmp_path: Path, clock: FakeClock, **paper: Any
) -> AsyncIterator[tuple[PaperServer, httpx.AsyncClient]]:
    """A paper server on ``clock`` (no price feed) and an HTTP client with the keys."""
    config = paper_config(tmp_path, **paper)
    async with (
        PaperServer(config, TEST_KEYS, clock=clock, feed_prices=False) as server,
        client_for(server) as client,
    ):
        yield server, client


async def open_orders(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = (await client.get("/v2/orders")).json()
    return answer


async def test_alpaca_py_parses_the_new_routes(tmp_path: Path) -> None:
    """TradingClient's replace, close, assets, calendar, configurations and history calls all parse."""
    async with paper_server(tmp_path) as server, client_for(server) as http:
        server.exchange.set_price("AAPL", Decimal("100"))
        client = TradingClient(TEST_KEYS.key_id, TEST_KEYS.secret_key, url_override=server.url)
        try:
            await http.post("/v2/orders", json=order_body(qty="4"))
            await wait_until(lambda: _empty(open_orders(http)), "the buy to fill")
            limit = (await http.post("/v2/orders", json=order_body(type="limit", limit_price="50"))).json()
            new = await asyncio.to_thread(
                client.replace_order_by_id, limit["id"], ReplaceOrderRequest(qty=2, limit_price=51)
            )
            assert isinstance(new, Order)
            assert (str(new.replaces), new.qty) == (limit["id"], "2")
            assert Decimal(str(new.limit_price)) == 51
            old = await asyncio.to_thread(client.get_order_by_id, limit["id"])
            assert isinstance(old, Order)
            assert (old.status.value, str(old.replaced_by)) == ("replaced", str(new.id))
            closing = await asyncio.to_thread(client.close_position, "AAPL", ClosePositionRequest(qty="1"))
            assert isinstance(closing, Order)
            assert (closing.side, closing.qty) == (OrderSide.SELL, "1")
            assets = await asyncio.to_thread(client.get_all_assets)
            assert isinstance(assets, list)
            assert {a.symbol for a in assets if isinstance(a, Asset)} == {"AAPL", "MSFT"}
            one = await asyncio.to_thread(client.get_asset, asset_id("MSFT"))
            assert isinstance(one, Asset)
            assert (one.symbol, one.tradable, one.shortable, one.fractionable) == ("MSFT", True, False, True)
            days = await asyncio.to_thread(
                client.get_calendar,
                GetCalendarRequest(start=dt.date(2026, 11, 25), end=dt.date(2026, 11, 27)),
            )
            assert isinstance(days, list)
            assert [d.date for d in days if isinstance(d, Calendar)] == [
                dt.date(2026, 11, 25),
                dt.date(2026, 11, 27),
            ]
            settings = await asyncio.to_thread(client.get_account_configurations)
            assert isinstance(settings, AccountConfiguration)
            assert settings.no_shorting is True
            changed = await asyncio.to_thread(
                client.set_account_configurations, settings.model_copy(update={"suspend_trade": True})
            )
            assert isinstance(changed, AccountConfiguration)
            assert changed.suspend_trade is True
            history = await asyncio.to_thread(
                client.get_portfolio_history, GetPortfolioHistoryRequest(period="1D", timeframe="1Min")
            )
            assert isinstance(history, PortfolioHistory)
            assert history.equity and history.timeframe == "1Min"
            closed = await asyncio.to_thread(client.close_all_positions, True)
            assert isinstance(closed, list)
        finally:
            client._session.close()


async def _empty(pending: Any) -> bool:
    return bool(await pending == [])


async def test_replace_makes_a_linked_new_order_and_checks_it_like_a_submit(tmp_path: Path) -> None:
    """A replace answers the new order (replaces = old id); the old one is `replaced` with replaced_by;
    a final order, a partially filled one or an unaffordable replacement is refused with 422/403."""
    async with paper_server(tmp_path) as server, client_for(server) as client:
        server.exchange.set_price("AAPL", Decimal("100"))
        old = (await client.post("/v2/orders", json=order_body(type="limit", limit_price="10"))).json()
        too_big = await client.patch(f"/v2/orders/{old['id']}", json={"qty": "100000"})
        assert (too_big.status_code, too_big.json()["code"]) == (403, 40310000)
        answer = await client.patch(
            f"/v2/orders/{old['id']}", json={"limit_price": "12", "client_order_id": "new-terms"}
        )
        assert answer.status_code == 200
        new = answer.json()
        assert (new["replaces"], new["client_order_id"], new["limit_price"], new["status"]) == (
            old["id"],
            "new-terms",
            "12",
            "new",
        )
        before = (await client.get(f"/v2/orders/{old['id']}")).json()
        assert (before["status"], before["replaced_by"]) == ("replaced", new["id"])
        assert before["replaced_at"] is not None
        again = await client.patch(f"/v2/orders/{old['id']}", json={"qty": "2"})
        assert (again.status_code, again.json()["code"]) == (422, 42210000)
        assert [o["id"] for o in await open_orders(client)] == [new["id"]]
        unknown = await client.patch("/v2/orders/00000000-0000-4000-8000-000000000000", json={"qty": "2"})
        assert unknown.status_code == 404
        stop = await client.patch(f"/v2/orders/{new['id']}", json={"stop_price": "5"})
        assert stop.status_code == 422


async def test_closing_positions_by_qty_percentage_and_all(tmp_path: Path) -> None:
    """Close by qty, by percentage (whole shares, rounded down), and everything with cancel_orders=true
    (207 per symbol); asking for more than held is 403, qty with percentage 422, no position 404."""
    async with paper_server(tmp_path) as server, client_for(server) as client:
        server.exchange.set_price("AAPL", Decimal("100"))
        server.exchange.set_price("MSFT", Decimal("50"))
        await client.post("/v2/orders", json=order_body(qty="10"))
        await client.post("/v2/orders", json=order_body(symbol="MSFT", qty="3"))
        await wait_until(lambda: _empty(open_orders(client)), "the buys to fill")
        assert (await client.delete("/v2/positions/AAPL", params={"qty": "11"})).status_code == 403
        both = await client.delete("/v2/positions/AAPL", params={"qty": "1", "percentage": "5"})
        assert both.status_code == 422
        assert (await client.delete("/v2/positions/TSLA")).status_code == 404
        sold = (await client.delete("/v2/positions/AAPL", params={"percentage": "25"})).json()
        assert (sold["side"], sold["qty"], sold["type"]) == ("sell", "2", "market")  # 2.5 → 2
        await wait_until(lambda: _empty(open_orders(client)), "the close to fill")
        assert server.exchange.position_qty("AAPL") == 8
        await client.post(
            "/v2/orders", json=order_body(side="sell", type="limit", limit_price="1000", qty="8")
        )
        answer = await client.delete("/v2/positions", params={"cancel_orders": "true"})
        assert answer.status_code == 207
        rows = sorted(answer.json(), key=lambda r: r["symbol"])
        assert [(r["symbol"], r["status"], r["body"]["qty"]) for r in rows] == [
            ("AAPL", 200, "8"),
            ("MSFT", 200, "3"),
        ]
        await wait_until(lambda: _no_positions(client), "every position to close")


async def _no_positions(client: httpx.AsyncClient) -> bool:
    return bool((await client.get("/v2/positions")).json() == [])


async def test_assets_are_the_priced_symbols_by_symbol_or_id(tmp_path: Path) -> None:
    """/v2/assets lists the exchange's symbols (us_equity by default); one asset by symbol or id; 404 else."""
    async with paper_server(tmp_path) as server, client_for(server) as client:
        listed = (await client.get("/v2/assets")).json()
        assert [a["symbol"] for a in listed] == ["AAPL", "MSFT"]
        assert (await client.get("/v2/assets", params={"asset_class": "crypto"})).json() == []
        by_id = (await client.get(f"/v2/assets/{asset_id('AAPL')}")).json()
        assert by_id == (await client.get("/v2/assets/AAPL")).json()
        missing = await client.get("/v2/assets/TSLA")
        assert (missing.status_code, missing.json()["code"]) == (404, 40410000)
        assert (await client.get("/v2/positions/" + asset_id("AAPL"))).status_code == 404


async def test_calendar_and_clock_follow_the_nyse(tmp_path: Path) -> None:
    """Thanksgiving is not a trading day, the day after closes at 13:00, settlement is T+1 (T+2 before
    2024-05-28), and the clock opens and closes with the session, on the exchange's clock."""
    clock = FakeClock(int(dt.datetime(2026, 11, 27, 9, 0, tzinfo=NY).timestamp() * 1e9))
    async with served(tmp_path, clock) as (_, client):
        days = (await client.get("/v2/calendar", params={"start": "2026-11-25", "end": "2026-11-30"})).json()
        assert [(d["date"], d["open"], d["close"], d["settlement_date"]) for d in days] == [
            ("2026-11-25", "09:30", "16:00", "2026-11-27"),
            ("2026-11-27", "09:30", "13:00", "2026-11-30"),
            ("2026-11-30", "09:30", "16:00", "2026-12-01"),
        ]
        old = (await client.get("/v2/calendar", params={"start": "2024-01-02", "end": "2024-01-02"})).json()
        assert [d["settlement_date"] for d in old] == ["2024-01-04"]
        settled = await client.get(
            "/v2/calendar", params={"start": "2026-11-30", "end": "2026-11-30", "date_type": "SETTLEMENT"}
        )
        assert [d["date"] for d in settled.json()] == ["2026-11-27"]
        before = (await client.get("/v2/clock")).json()
        assert before == {
            "timestamp": "2026-11-27T09:00:00-05:00",
            "is_open": False,
            "next_open": "2026-11-27T09:30:00-05:00",
            "next_close": "2026-11-27T13:00:00-05:00",
        }
        clock.advance(3600)
        during = (await client.get("/v2/clock")).json()
        assert (during["is_open"], during["next_open"]) == (True, "2026-11-30T09:30:00-05:00")
        assert (await client.get("/v2/calendar", params={"start": "someday"})).status_code == 422
    assert nyse().first == dt.date(2000, 1, 3)


async def test_account_configurations_patch_and_suspend_trade(tmp_path: Path) -> None:
    """PATCH keeps valid changes (they survive a restart); suspend_trade refuses new orders with 403;
    unknown names, wrong types and settings the venue cannot honour are 422 and change nothing."""
    async with paper_server(tmp_path) as server, client_for(server) as client:
        default = (await client.get("/v2/account/configurations")).json()
        assert (default["no_shorting"], default["suspend_trade"], default["max_margin_multiplier"]) == (
            True,
            False,
            "1",
        )
        for bad in ({"colour": "red"}, {"suspend_trade": "yes"}, {"max_margin_multiplier": "4"}):
            answer = await client.patch("/v2/account/configurations", json=bad)
            assert answer.status_code == 422, bad
        assert (await client.get("/v2/account/configurations")).json() == default
        changed = await client.patch("/v2/account/configurations", json={"suspend_trade": True})
        assert changed.json()["suspend_trade"] is True
        refused = await client.post("/v2/orders", json=order_body(type="limit", limit_price="1"))
        assert (refused.status_code, refused.json()["code"]) == (403, 40310000)
    async with paper_server(tmp_path) as server, client_for(server) as client:
        assert (await client.get("/v2/account/configurations")).json()["suspend_trade"] is True


async def test_portfolio_history_comes_from_the_equity_record(tmp_path: Path) -> None:
    """The history's last equity is the account's; base value and profit follow; bad periods are 422."""
    start = int(dt.datetime(2026, 11, 2, 15, 0, tzinfo=dt.UTC).timestamp() * 1e9)
    clock = FakeClock(start)
    async with served(tmp_path, clock, latency_s=0) as (server, client):
        exchange = server.exchange
        exchange.set_price("AAPL", Decimal("100"))
        await client.post("/v2/orders", json=order_body(qty="10"))
        clock.advance(60)
        exchange.process()
        clock.advance(120)
        exchange.set_price("AAPL", Decimal("110"))
        history = (
            await client.get("/v2/account/portfolio/history", params={"period": "1D", "timeframe": "1Min"})
        ).json()
        equity = exchange.account().equity
        assert history["equity"][-1] == float(equity)
        # A new account: the base is the first window's equity (after the buy's slippage and fee).
        base = history["equity"][0]
        assert history["base_value"] == base < 100_000
        assert history["profit_loss"][-1] == float(equity) - base
        assert history["timestamp"][0] == start // 1_000_000_000
        assert len(history["timestamp"]) == 4  # minutes 0..3
        for bad in ({"period": "soon"}, {"timeframe": "2Min"}, {"period": "3M", "timeframe": "1Min"}):
            assert (await client.get("/v2/account/portfolio/history", params=bad)).status_code == 422


async def test_rate_limit_headers_count_down_per_minute(tmp_path: Path) -> None:
    """Each answer carries X-RateLimit-Limit/Remaining/Reset; remaining falls by one a request and
    resets with the clock's minute."""
    clock = FakeClock(int(dt.datetime(2026, 11, 2, 15, 0, tzinfo=dt.UTC).timestamp() * 1e9))
    async with served(tmp_path, clock) as (_, client):
        first = (await client.get("/v2/account")).headers
        second = (await client.get("/v2/nothing")).headers
        clock.advance(60)
        later = (await client.get("/v2/account")).headers
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"], second["X-RateLimit-Remaining"]) == (
        "200",
        "199",
        "198",
    )
    assert int(later["X-RateLimit-Reset"]) == int(first["X-RateLimit-Reset"]) + 60
    assert later["X-RateLimit-Remaining"] == "199"


async def test_until_is_exclusive_and_type_and_time_in_force_required(tmp_path: Path) -> None:
    """GET /v2/orders?until=T leaves out an order created at T; an order without time_in_force or
    type is 422 naming the field (the spec requires both)."""
    async with paper_server(tmp_path) as server, client_for(server) as client:
        made = (await client.post("/v2/orders", json=order_body(type="limit", limit_price="1"))).json()
        listed = await client.get("/v2/orders", params={"status": "all", "until": made["created_at"]})
        assert listed.json() == []
        for field in ("time_in_force", "type"):
            body = order_body()
            del body[field]
            refused = await client.post("/v2/orders", json=body)
            assert refused.status_code == 422
            assert refused.json()["message"].startswith(f"{field} is required")
        assert len(server.exchange.list_orders(status="all")) == 1


async def test_side_filters_before_the_limit(tmp_path: Path) -> None:
    """GET /v2/orders?side=buy&limit=1 finds the newest buy even when a newer sell exists."""
    async with paper_server(tmp_path) as server, client_for(server) as client:
        server.exchange.set_price("AAPL", Decimal("100"))
        await client.post("/v2/orders", json=order_body(qty="2"))
        await wait_until(lambda: _empty(open_orders(client)), "the buy to fill")
        buy = (await client.post("/v2/orders", json=order_body(type="limit", limit_price="1"))).json()
        await client.post("/v2/orders", json=order_body(side="sell", type="limit", limit_price="1000"))
        found = (await client.get("/v2/orders", params={"side": "buy", "limit": "1"})).json()
        assert [o["id"] for o in found] == [buy["id"]]


async def test_api_error_code_is_readable_on_every_refusal(tmp_path: Path) -> None:
    """alpaca-py's APIError.code works on a 404 route (no KeyError), since every error has a code."""
    async with paper_server(tmp_path) as server:
        client = TradingClient(TEST_KEYS.key_id, TEST_KEYS.secret_key, url_override=server.url)
        try:
            with pytest.raises(APIError) as refused:
                await asyncio.to_thread(client.get_asset, "TSLA")
            assert refused.value.code == 40410000
        finally:
            client._session.close()
