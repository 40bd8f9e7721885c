"""A running daemon carries out `autoquant replace` and `autoquant halt --flatten`, on the embedded paper
exchange and through the Alpaca adapter against a paper-server process: the replaced order ends
replaced and its replacement works on the same terms the operator gave; the flatten cancels every open
order and closes every position, each closing order and fill in the ledger, no incident opened."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.chaos.processes import ServerProcess
from tests.e2e.daemon_harness import DaemonProcess, query, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(params=["paper", "alpaca"])
def daemon(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DaemonProcess]:
    if request.param == "paper":
        process = DaemonProcess(tmp_path)
        yield process
        process.kill()
        return
    with ServerProcess(tmp_path / "server") as server:
        process = DaemonProcess(tmp_path / "daemon", url=server.url)
        yield process
        process.kill()


def status_of(daemon: DaemonProcess, client_order_id: str) -> str | None:
    rows = query(
        daemon.ledger,
        "SELECT status_after FROM order_events WHERE client_order_id = ? ORDER BY seq DESC LIMIT 1",
        (client_order_id,),
    )
    return str(rows[0][0]) if rows else None


def account_positions(daemon: DaemonProcess) -> dict[str, Decimal]:
    result = daemon.cli("positions", "--json")
    assert result.returncode == 0, result.stderr
    totals: dict[str, Decimal] = {}
    for row in json.loads(result.stdout):
        totals[row["symbol"]] = totals.get(row["symbol"], Decimal(0)) + Decimal(row["qty"])
    return totals


def test_replace_then_halt_and_flatten(daemon: DaemonProcess) -> None:
    """replace: old REPLACED, the new one ACCEPTED on its terms; halt --flatten: flat, fills kept, clean."""
    daemon.start()
    wait_for(lambda: query(daemon.ledger, "SELECT 1 FROM fills"), 60, "a first fill", poll_s=0.1)
    placed = daemon.cli(
        "order", "rest-1", "--symbol", "AAPL", "--side", "buy", "--qty", "1", "--limit-price", "1.5",
        "--time-in-force", "gtc", "--reason", "a resting bid to replace",
    )  # fmt: skip
    assert placed.returncode == 0, placed.stderr
    wait_for(lambda: status_of(daemon, "rest-1") == "accepted" or None, 30, "the resting order accepted")

    replaced = daemon.cli(
        "replace", "rest-1", "--limit-price", "1.75", "--qty", "2", "--reason", "raise the bid"
    )
    assert replaced.returncode == 0, replaced.stderr
    new_id = replaced.stdout.split(" as order ")[1].split()[0]
    wait_for(lambda: status_of(daemon, new_id) == "accepted" or None, 30, "the replacement accepted")
    assert status_of(daemon, "rest-1") == "replaced"
    terms = query(
        daemon.ledger, "SELECT qty, limit_price, replaces FROM orders WHERE client_order_id = ?", (new_id,)
    )
    assert terms == [("2", "1.75", "rest-1")]

    refused = daemon.cli("replace", "rest-1", "--qty", "3", "--reason", "again")
    assert refused.returncode == 2 and "already replaced" in refused.stderr, refused

    bought = daemon.cli(
        "order", "pos-1", "--symbol", "AAPL", "--side", "buy", "--qty", "3", "--reason", "hold some"
    )
    assert bought.returncode == 0, bought.stderr
    wait_for(lambda: status_of(daemon, "pos-1") == "filled" or None, 30, "the operator's buy filled")

    flattened = daemon.cli("halt", "--flatten", "--reason", "end of the test")
    assert flattened.returncode == 0, flattened.stderr
    wait_for(
        lambda: query(daemon.ledger, "SELECT ok, detail FROM broker_request_outcomes o JOIN broker_requests r"
                      " ON r.seq = o.request_seq WHERE r.kind = 'flatten'"),
        30,
        "the daemon to carry out the flatten",
    )  # fmt: skip
    wait_for(
        lambda: all(qty == 0 for qty in account_positions(daemon).values()) or None,
        30,
        "every position closed in the ledger",
    )
    wait_for(lambda: status_of(daemon, new_id) == "canceled" or None, 30, "the open replacement canceled")
    flatten_ns = query(daemon.ledger, "SELECT local_ts_ns FROM broker_requests WHERE kind = 'flatten'")[0][0]
    wait_for(
        lambda: query(
            daemon.ledger, "SELECT 1 FROM reconciliations WHERE clean = 1 AND started_ns > ?", (flatten_ns,)
        ),
        60,
        "a clean reconciliation after the flatten",
    )
    incidents = daemon.cli("incidents", "--open", "--json")
    assert json.loads(incidents.stdout) == [], incidents.stdout
    detail = query(
        daemon.ledger,
        "SELECT o.detail FROM broker_request_outcomes o JOIN broker_requests r ON r.seq = o.request_seq"
        " WHERE r.kind = 'flatten'",
    )[0][0]
    closing = detail.split(": ", 1)[1].split("; ")[0].split(", ")
    assert closing and closing != ["none"], detail
    for client_order_id in closing:
        assert status_of(daemon, client_order_id) == "filled", client_order_id
    fills = query(
        daemon.ledger,
        "SELECT count(*) FROM fills WHERE client_order_id IN ({})".format(", ".join("?" * len(closing))),
        tuple(closing),
    )[0][0]
    assert fills >= len(closing)
    assert daemon.terminate() == 0
