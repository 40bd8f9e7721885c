"""`POST /api/v1/replace` and the halt route's `flatten`, through `autoquant api` on its own: the same
command layer as the CLI (404 for an unknown order, 422 naming the field, nothing written), and a flatten
recorded for the daemon beside the halt."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.conftest import TOKEN
from tests.ledger_sql import query

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_replace_refusals_and_halt_with_flatten(lone_api: str, tmp_path: Path) -> None:
    """replace: 404 unknown order, 422 without new terms (nothing written); halt with flatten: recorded."""
    missing = httpx.post(
        f"{lone_api}/api/v1/replace",
        json={"client_order_id": "nope", "qty": "2", "reason": "x"},
        headers=AUTH,
    )
    assert missing.status_code == 404 and "no order nope" in missing.json()["error"], missing.text
    empty = httpx.post(
        f"{lone_api}/api/v1/replace", json={"client_order_id": "nope", "reason": "x"}, headers=AUTH
    )
    assert empty.status_code == 422 and empty.json()["field"] == "qty", empty.text
    assert query(tmp_path / "ledger.db", "SELECT count(*) FROM broker_requests") == [(0,)]
    halted = httpx.post(f"{lone_api}/api/v1/halt", json={"reason": "get out", "flatten": True}, headers=AUTH)
    assert halted.status_code == 200, halted.text
    assert halted.json()["trading_state"] == "halted" and "flatten requested" in halted.json()["message"]
    assert query(tmp_path / "ledger.db", "SELECT kind, reason, actor FROM broker_requests") == [
        ("flatten", "get out", "api@127.0.0.1")
    ]


@pytest.mark.parametrize("lone_api_process", ["writes_per_minute = 600\n"], indirect=True)
def test_a_replaces_trail_is_checked_and_recorded(lone_api: str, tmp_path: Path) -> None:
    """replace's ``trail``: zero is refused naming the field (nothing written); a trail alone is new terms."""
    zero = httpx.post(
        f"{lone_api}/api/v1/replace",
        json={"client_order_id": "t-1", "trail": "0", "reason": "x"},
        headers=AUTH,
    )
    assert zero.status_code == 422 and zero.json()["field"] == "trail", zero.text
    unknown = httpx.post(
        f"{lone_api}/api/v1/replace",
        json={"client_order_id": "t-1", "trail": "3", "reason": "x"},
        headers=AUTH,
    )
    assert unknown.status_code == 404 and "no order t-1" in unknown.json()["error"], unknown.text
    assert query(tmp_path / "ledger.db", "SELECT count(*) FROM broker_requests") == [(0,)]
