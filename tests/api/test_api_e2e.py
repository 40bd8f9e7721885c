"""The operator API of a real daemon (its child process), over real HTTP and websockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.api.conftest import TOKEN, ApiDaemon
from tests.e2e.daemon_harness import wait_for

pytestmark = pytest.mark.slow

READ_ROUTES = [
    "/api/v1/status",
    "/api/v1/orders",
    "/api/v1/fills",
    "/api/v1/positions",
    "/api/v1/portfolio",
    "/api/v1/decisions",
    "/api/v1/incidents",
    "/api/v1/bars/AAPL",
]


def test_health_is_open_and_everything_else_needs_the_token(api_daemon: ApiDaemon) -> None:
    """/health answers without a token; every other route is 401 without it or with a wrong one."""
    assert httpx.get(f"{api_daemon.base}/health").json()["ok"] is True
    for path in [*READ_ROUTES, "/metrics", "/"]:
        assert httpx.get(f"{api_daemon.base}{path}").status_code == 401, path
        wrong = httpx.get(f"{api_daemon.base}{path}", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401, path
        assert "Authorization: Bearer" in wrong.json()["error"]
    assert httpx.post(f"{api_daemon.base}/api/v1/halt", json={"reason": "x"}).status_code == 401


def test_every_read_route_answers_with_its_schema_version(api_daemon: ApiDaemon) -> None:
    """Each read route returns 200 JSON carrying schema_version, with the daemon's trading visible."""
    wait_for(lambda: api_daemon.get("/api/v1/fills").json()["fills"], 30, "a fill")
    for path in READ_ROUTES:
        response = api_daemon.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["schema_version"] == 1
    status = api_daemon.get("/api/v1/status").json()
    assert status["daemon"]["running"] is True
    orders = api_daemon.get("/api/v1/orders", symbol="AAPL").json()["orders"]
    assert orders and {o["symbol"] for o in orders} == {"AAPL"}
    decisions = api_daemon.get("/api/v1/decisions", action="hold").json()
    assert decisions["decisions"] and {d["action"] for d in decisions["decisions"]} == {"hold"}
    trace = api_daemon.get(f"/api/v1/trace/{orders[0]['client_order_id']}").json()
    assert any(entry["what"] == "reserved" for entry in trace["entries"])
    portfolio = api_daemon.get("/api/v1/portfolio").json()
    assert portfolio["equity"] is not None


def test_errors_say_what_is_wrong(api_daemon: ApiDaemon) -> None:
    """422 names the field, 404 for an unknown id, 413 for an oversized body, all as JSON."""
    missing = api_daemon.post("/api/v1/halt", {})
    assert missing.status_code == 422 and missing.json()["field"] == "reason"
    pause = api_daemon.post("/api/v1/pause", {"strategy": "nope", "reason": "x"})
    assert pause.status_code == 422 and pause.json()["field"] == "strategy"
    assert "not a configured strategy" in pause.json()["error"]
    extra = api_daemon.post("/api/v1/halt", {"reason": "x", "bogus": 1})
    assert extra.status_code == 422 and extra.json()["field"] == "bogus"
    assert api_daemon.get("/api/v1/trace/no-such-id").status_code == 404
    assert api_daemon.get("/api/v1/bars/ZZZZ").status_code == 404
    cancel = api_daemon.post("/api/v1/cancel", {"client_order_id": "no-such", "reason": "x"})
    assert cancel.status_code == 404 and cancel.json()["field"] == "client_order_id"
    resolve = api_daemon.post("/api/v1/resolve", {"incident_id": "no-such", "note": "x"})
    assert resolve.status_code == 404
    big = api_daemon.post("/api/v1/halt", {"reason": "x" * 2_000_000})
    assert big.status_code == 413 and "request body over" in big.json()["error"]


def test_halt_and_resume_over_http_reach_the_daemon_and_the_cli(api_daemon: ApiDaemon) -> None:
    """A halt posted over HTTP is the CLI's halt: the ledger, `autoquant status` and the daemon see it."""
    halted = api_daemon.post("/api/v1/halt", {"reason": "api test halt"})
    assert halted.status_code == 200, halted.text
    assert halted.json()["message"].startswith("halt recorded for account: trading state halted")
    cli = api_daemon.daemon.cli("status", "--json")
    assert json.loads(cli.stdout)["trading_state"] == "halted"

    def daemon_sees_it() -> bool:
        status_file = api_daemon.daemon.ledger.with_name("ledger.db.status.json")
        return bool(json.loads(status_file.read_text()).get("trading_state") == "halted")

    wait_for(daemon_sees_it, 10, "the daemon to publish HALTED")
    resumed = api_daemon.post("/api/v1/resume", {"reason": "api test over"})
    assert resumed.json()["trading_state"] == "active"
    assert api_daemon.get("/api/v1/status").json()["trading_state"] == "active"


Event = dict[str, Any]


async def _collect(
    url: str, until: int, timeout_s: float = 20.0, stop: Callable[[Event], bool] = lambda e: False
) -> list[Event]:
    got: list[Event] = []
    async with asyncio.timeout(timeout_s), connect(url) as ws:
        while len(got) < until:
            got.append(json.loads(await ws.recv()))
            if stop(got[-1]):
                break
    return got


async def test_events_stream_resumes_after_a_sequence_without_gaps(api_daemon: ApiDaemon) -> None:
    """The websocket sends typed events with their ledger seq; reconnecting with ?after=SEQ misses nothing."""
    base = f"ws://127.0.0.1:{api_daemon.port}/api/v1/events?token={TOKEN}"
    first = await _collect(f"{base}&after=0", 30)
    seqs = [int(str(e["seq"])) for e in first]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert {"decision", "order"} <= {str(e["type"]) for e in first}
    last = seqs[9]
    again = await _collect(f"{base}&after={last}", 20)
    assert [e["seq"] for e in again[:20]] == [e["seq"] for e in first[10:30]]
    paused = api_daemon.post("/api/v1/pause", {"reason": "ws test", "strategy": "sma-msft"})
    assert paused.status_code == 200
    tail = await _collect(
        f"{base}&after={seqs[-1]}",
        100_000,
        stop=lambda e: e["type"] == "control" and e["data"]["reason"] == "ws test",
    )
    tail_seqs = [e["seq"] for e in tail]
    assert tail_seqs == sorted(tail_seqs) and tail[-1]["data"]["reason"] == "ws test"
    api_daemon.post("/api/v1/resume", {"reason": "ws test over", "strategy": "sma-msft"})
    with pytest.raises(Exception, match="403"):  # refused before the handshake completes
        await _collect(f"ws://127.0.0.1:{api_daemon.port}/api/v1/events", 1, timeout_s=5)


def test_metrics_parse_as_prometheus_text(api_daemon: ApiDaemon) -> None:
    """/metrics parses with prometheus-client's parser and holds the issue's series."""
    wait_for(lambda: api_daemon.get("/api/v1/fills").json()["fills"], 30, "a fill")
    wait_for(lambda: "autoquant_loop_lag_seconds" in api_daemon.get("/metrics").text, 10, "metrics")
    families = {f.name: f for f in text_string_to_metric_families(api_daemon.get("/metrics").text)}
    for name in (
        "autoquant_decisions",
        "autoquant_decision_latency_seconds",
        "autoquant_submit_latency_seconds",
        "autoquant_orders",
        "autoquant_orders_unknown",
        "autoquant_oldest_unknown_order_age_seconds",
        "autoquant_trading_state",
        "autoquant_paused",
        "autoquant_reconciliations",
        "autoquant_broker_drift",
        "autoquant_fees",
        "autoquant_slippage_bps",
        "autoquant_ledger_commit_seconds",
        "autoquant_loop_lag_seconds",
        "autoquant_worker_restarts_total",
        "autoquant_broker_reachable",
    ):
        assert name in families, name
    decisions = sum(s.value for s in families["autoquant_decisions"].samples if s.name.endswith("_total"))
    assert decisions > 0
    submits = [s for s in families["autoquant_submit_latency_seconds"].samples if s.name.endswith("_count")]
    assert submits[0].value > 0
    assert [s.value for s in families["autoquant_daemon_up"].samples] == [1.0]


def test_simulate_gives_a_verdict_per_check_and_writes_nothing(api_daemon: ApiDaemon) -> None:
    """orders/simulate runs the risk gate: a verdict with each check, and the ledger gains no order."""
    wait_for(lambda: api_daemon.get("/api/v1/bars/AAPL").json()["bars"], 30, "a recorded bar")
    before = len(api_daemon.get("/api/v1/orders", symbol="AAPL").json()["orders"])
    small = api_daemon.post(
        "/api/v1/orders/simulate", {"strategy_id": "sma-aapl", "symbol": "AAPL", "side": "buy", "qty": "1"}
    )
    assert small.status_code == 200, small.text
    names = {c["name"] for c in small.json()["checks"]}
    assert {"trading_state", "max_order_notional"} <= names
    huge = api_daemon.post(
        "/api/v1/orders/simulate",
        {"strategy_id": "sma-aapl", "symbol": "AAPL", "side": "buy", "qty": "1000000"},
    ).json()
    assert huge["allowed"] is False and "notional" in huge["reason"]
    wrong = api_daemon.post(
        "/api/v1/orders/simulate", {"strategy_id": "sma-aapl", "symbol": "AAPL", "side": "Buy", "qty": "1"}
    )
    assert wrong.status_code == 422 and wrong.json()["field"] == "side"
    orders_now = api_daemon.get("/api/v1/orders", symbol="AAPL").json()["orders"]
    assert not [o for o in orders_now if o["strategy_id"] == "operator"] and len(orders_now) >= before


def test_signal_run_decides_without_acting(api_daemon: ApiDaemon) -> None:
    """signal/run returns the configured strategy's decision on the recorded bars, recording nothing."""
    wait_for(lambda: len(api_daemon.get("/api/v1/bars/AAPL").json()["bars"]) >= 5, 30, "five bars")
    result = api_daemon.post("/api/v1/signal/run", {"strategy": "sma-aapl"})
    assert result.status_code == 200, result.text
    body = result.json()
    [decision] = body["decisions"]
    assert decision["action"] in ("buy", "sell", "hold") and body["bars_used"] >= 2 and decision["reason"]
    unknown = api_daemon.post("/api/v1/signal/run", {"strategy": "nope"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "strategy"


def test_backtest_job_runs_off_the_loop_and_reports(api_daemon: ApiDaemon) -> None:
    """POST /backtest returns a job id at once; GET gives its state and then the report `autoquant
    backtest --json` prints (the whole path under a virtual clock); bad parameters are 422 by field."""
    closes = [100, 101, 102, 103, 102, 100, 98, 97, 99, 102, 105, 104, 101, 98, 96]
    bars = [
        {
            "symbol": "AAPL",
            "open_time": f"2026-01-05T14:{30 + i:02d}:00Z",
            "close_time": f"2026-01-05T14:{31 + i:02d}:00Z",
            "open": str(c),
            "high": str(c + 1),
            "low": str(c - 1),
            "close": str(c),
            "volume": "1000",
        }
        for i, c in enumerate(closes)
    ]
    started = api_daemon.post("/api/v1/backtest", {"strategy": "sma-aapl", "bars": bars})
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    done = wait_for(
        lambda: (r := api_daemon.get(f"/api/v1/backtest/{job_id}").json())["state"] == "done" and r,
        20,
        "the backtest job",
    )
    result = done["result"]
    assert result["bars"] == len(closes) and "fill_rule" in result and isinstance(result["trades"], list)
    assert sum(n for by_reason in result["decisions"].values() for n in by_reason.values()) >= len(closes) - 1
    assert api_daemon.get("/api/v1/backtest/bt-none").status_code == 404
    bad = api_daemon.post(
        "/api/v1/backtest", {"strategy": "sma-aapl", "bars": bars, "overrides": {"fast": -1}}
    )
    assert bad.status_code == 422 and "fast" in bad.json()["error"]


def test_manual_order_is_idempotent_and_goes_through_execution(api_daemon: ApiDaemon) -> None:
    """orders/submit twice with one client_order_id makes one order, which the daemon sends and fills;
    the same id for a different order is 409."""
    body = {"client_order_id": "manual-1", "symbol": "MSFT", "side": "buy", "qty": "1", "reason": "test"}
    first = api_daemon.post("/api/v1/orders/submit", body)
    assert first.status_code == 202, first.text
    again = api_daemon.post("/api/v1/orders/submit", body)
    assert again.status_code == 202 and again.json()["changed"] is False

    def manual_orders() -> list[dict[str, object]]:
        return [
            o for o in api_daemon.get("/api/v1/orders").json()["orders"] if o["client_order_id"] == "manual-1"
        ]

    def filled() -> list[dict[str, object]] | None:
        rows = manual_orders()
        return rows if rows and rows[0]["status"] == "filled" else None

    rows = wait_for(filled, 20, "the manual order's fill")
    assert len(rows) == 1 and rows[0]["strategy_id"] == "operator"
    third = api_daemon.post("/api/v1/orders/submit", body)
    assert third.json()["trading_state"] == "filled" and third.json()["changed"] is False
    other = api_daemon.post("/api/v1/orders/submit", {**body, "qty": "2"})
    assert other.status_code == 409 and other.json()["field"] == "client_order_id"
    daemon_id = api_daemon.post("/api/v1/orders/submit", {**body, "client_order_id": "aq-1"})
    assert daemon_id.status_code == 422 and daemon_id.json()["field"] == "client_order_id"
