"""The committed docs/openapi.json is the API's contract: the served schema must not drift from it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from autoquant.operator.api.schema import openapi_document, render
from tests.api.conftest import ApiDaemon

PINNED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
REGENERATE = "python -m autoquant.operator.api.schema docs/openapi.json"


def test_the_built_schema_is_the_committed_one() -> None:
    """The schema the code builds equals docs/openapi.json byte for byte (regenerate on purpose only)."""
    assert PINNED.exists(), f"docs/openapi.json is missing: run `{REGENERATE}` and commit it"
    assert render(openapi_document()) == PINNED.read_text(encoding="utf-8"), (
        f"the API's schema drifted from docs/openapi.json: if the change is deliberate, run `{REGENERATE}`"
    )


@pytest.mark.slow
def test_the_served_schema_is_the_committed_one(api_daemon: ApiDaemon) -> None:
    """GET /openapi.json (behind the token) serves OpenAPI 3 equal to docs/openapi.json."""
    assert httpx.get(f"{api_daemon.base}/openapi.json").status_code == 401
    served = api_daemon.get("/openapi.json").json()
    assert served["openapi"].startswith("3.")
    assert served == json.loads(PINNED.read_text(encoding="utf-8"))
