"""A manual replace of an order older than ``[risk] max_data_age_s`` is judged by the risk gate on the
replacement's own freshness, not the original order's age: the replacement is reserved when the operator
asks, its pre-submit check sees it seconds old and the symbol's bars fresh, and it is sent. (A
reservation that itself waited past the limit is still refused: ``decision_age``.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.daemon_harness import DaemonProcess, query, wait_for

pytestmark = pytest.mark.slow

MAX_AGE_S = 2.0


def status_of(daemon: DaemonProcess, client_order_id: str) -> str | None:
    rows = query(
        daemon.ledger,
        "SELECT status_after FROM order_events WHERE client_order_id = ? ORDER BY seq DESC LIMIT 1",
        (client_order_id,),
    )
    return str(rows[0][0]) if rows else None


def test_replacing_an_order_older_than_the_data_age_limit_is_sent(tmp_path: Path) -> None:
    """The resting order is 3 s old against a 2 s limit; its replacement passes decision_age (reserved
    under a second ago) and data_freshness, and is accepted; the old order ends replaced."""
    daemon = DaemonProcess(tmp_path)
    config = daemon.config.read_text()
    daemon.config.write_text(config.replace("[risk]\n", f"[risk]\nmax_data_age_s = {MAX_AGE_S}\n", 1))
    try:
        since = daemon.start()
        wait_for(lambda: daemon.ready_since(since), 60, f"the daemon's start-up\n{daemon.tail()}")
        placed = daemon.cli(
            "order", "old-1", "--symbol", "AAPL", "--side", "buy", "--qty", "1", "--limit-price", "1.5",
            "--time-in-force", "gtc", "--reason", "a resting bid",
        )  # fmt: skip
        assert placed.returncode == 0, placed.stderr
        wait_for(lambda: status_of(daemon, "old-1") == "accepted" or None, 30, "the resting order accepted")
        [(created_ns,)] = query(
            daemon.ledger, "SELECT local_ts_ns FROM orders WHERE client_order_id = 'old-1'"
        )
        wait_for(
            lambda: time.time_ns() - created_ns > (MAX_AGE_S + 1) * 1e9, 10, "the order to outlive the limit"
        )

        replaced = daemon.cli("replace", "old-1", "--limit-price", "1.75", "--reason", "raise the bid")
        assert replaced.returncode == 0, replaced.stderr
        new_id = replaced.stdout.split(" as order ")[1].split()[0]
        final = wait_for(
            lambda: status_of(daemon, new_id) in ("accepted", "denied") and status_of(daemon, new_id),
            30,
            "the replacement sent or denied",
        )
        [(allowed, reason, checks)] = query(
            daemon.ledger,
            "SELECT allowed, reason, checks_json FROM risk_events"
            " WHERE client_order_id = ? AND stage = 'submit'",
            (new_id,),
        )
        assert final == "accepted" and allowed == 1, reason
        by_name = {check["name"]: check for check in json.loads(checks)}
        assert by_name["decision_age"]["passed"] and by_name["data_freshness"]["passed"], by_name
        reserved_s = float(by_name["decision_age"]["detail"].split("reserved ")[1].split("s")[0])
        assert reserved_s < MAX_AGE_S, by_name["decision_age"]
        assert status_of(daemon, "old-1") == "replaced"
    finally:
        daemon.kill()
