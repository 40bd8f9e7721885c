"""Domain models refuse bad input at construction, naming the field; ids are deterministic."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from autoquant.domain.bars import Bar
from autoquant.domain.decisions import OrderIntent
from autoquant.domain.ids import client_order_id, decision_id
from autoquant.domain.values import Side, from_ns, to_ns

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def intent(**changes: object) -> OrderIntent:
    data: dict[str, object] = {
        "strategy_id": "sma-aapl",
        "symbol": "AAPL",
        "side": "buy",
        "qty": "10",
        "reason": "bullish_cross",
        "decision_id": "d-1",
        "data_time": T0,
    }
    data.update(changes)
    return OrderIntent.model_validate(data)


def bar(**changes: object) -> Bar:
    data: dict[str, object] = {
        "symbol": "AAPL",
        "open_time": T0,
        "close_time": datetime(2026, 1, 5, 14, 31, tzinfo=UTC),
        "open": "100",
        "high": "101",
        "low": "99",
        "close": "100.5",
        "volume": "1000",
        "source": "test",
    }
    data.update(changes)
    return Bar.model_validate(data)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"qty": "-1"}, "qty"),
        ({"qty": "0"}, "qty"),
        ({"side": "Buy!"}, "side"),
        ({"side": "Buy"}, "side"),
        ({"symbol": "aapl"}, "symbol"),
        ({"data_time": datetime(2026, 1, 5, 14, 30)}, "data_time"),  # noqa: DTZ001 -- a naive time is the refused input
        ({"order_type": "limit"}, "limit_price"),
        ({"qty": "NaN"}, "qty"),
        ({"qty": True}, "qty"),
    ],
)
def test_intent_refuses_bad_input_naming_the_field(changes: dict[str, object], field: str) -> None:
    """An invalid intent fails at construction with a message that names the field."""
    with pytest.raises(ValidationError) as raised:
        intent(**changes)
    assert field in str(raised.value)


def test_intent_is_immutable() -> None:
    """Models are frozen: an intent cannot be changed after construction."""
    item = intent()
    with pytest.raises(ValidationError):
        item.qty = Decimal(1)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"high": "100.2"}, "high must be at least"),
        ({"low": "100.1"}, "low must be at most"),
        ({"low": "0"}, "low"),
        ({"volume": "-1"}, "volume"),
        ({"close_time": T0}, "close_time must be after"),
        ({"open_time": datetime(2026, 1, 5, 14, 30)}, "open_time"),  # noqa: DTZ001 -- a naive time is the refused input
        ({"schema_version": 2}, "schema_version"),
    ],
)
def test_bar_refuses_inconsistent_prices(changes: dict[str, object], text: str) -> None:
    """A bar with high below the body, low above it, a non-positive low or a naive time is refused."""
    with pytest.raises(ValidationError, match=text):
        bar(**changes)


def test_bar_normalises_times_to_utc() -> None:
    """An aware time in another zone is stored as UTC."""
    from datetime import timedelta, timezone

    eastern = timezone(timedelta(hours=-5))
    item = bar(open_time=datetime(2026, 1, 5, 9, 30, tzinfo=eastern))
    assert item.open_time == T0 and item.open_time.tzinfo is UTC


def test_nanoseconds_round_trip() -> None:
    """UTC nanoseconds convert both ways exactly at microsecond precision."""
    moment = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert from_ns(to_ns(moment)) == moment
    with pytest.raises(ValueError, match="naive"):
        to_ns(datetime(2026, 3, 1))  # noqa: DTZ001 -- a naive time is the refused input


def test_client_order_id_shape_and_determinism() -> None:
    """Client order ids are at most 48 letters, digits and dashes, and depend only on their inputs."""
    first = client_order_id("sma-aapl", "AAPL", T0, Side.BUY, 0)
    assert first == client_order_id("sma-aapl", "AAPL", T0, Side.BUY, 0)
    assert len(first) <= 48 and all(c.isalnum() or c == "-" for c in first)
    others = {
        client_order_id("sma-aapl", "AAPL", T0, Side.SELL, 0),
        client_order_id("sma-aapl", "AAPL", T0, Side.BUY, 1),
        client_order_id("sma-msft", "AAPL", T0, Side.BUY, 0),
        client_order_id("sma-aapl", "MSFT", T0, Side.BUY, 0),
        client_order_id("sma-aapl", "AAPL", datetime(2026, 1, 5, 14, 31, tzinfo=UTC), Side.BUY, 0),
    }
    assert first not in others and len(others) == 5


def test_ids_are_identical_in_separate_processes() -> None:
    """Two fresh interpreters (with different hash seeds) derive the same ids."""
    code = (
        "from datetime import datetime, UTC; from autoquant.domain.ids import client_order_id, decision_id;"
        "from autoquant.domain.values import Side;"
        "t = datetime(2026, 1, 5, 14, 30, tzinfo=UTC);"
        "print(client_order_id('sma-aapl', 'AAPL', t, Side.BUY, 3), decision_id('sma-aapl', 'AAPL', t))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    here = f"{client_order_id('sma-aapl', 'AAPL', T0, Side.BUY, 3)} {decision_id('sma-aapl', 'AAPL', T0)}"
    assert outputs == {here}


FORBIDDEN = {
    "asyncio",
    "sqlite3",
    "aiosqlite",
    "structlog",
    "alpaca",
    "socket",
    "requests",
    "httpx",
    "fastapi",
    "uvicorn",
    "websockets",
    "threading",
    "subprocess",
    "logging",
}


def test_domain_imports_no_io_module() -> None:
    """Nothing under autoquant/domain imports an I/O module or a layer above it."""
    root = Path(__file__).parents[2] / "autoquant" / "domain"
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in FORBIDDEN or (top == "autoquant" and not name.startswith("autoquant.domain")):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
