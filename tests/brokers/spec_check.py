"""Alpaca's published OpenAPI descriptions (``tests/brokers/spec/``) as a response checker.

``SpecChecker.check(method, url_path, status, body, headers)`` finds the spec's operation for a
concrete request (``/v2/orders/3f…`` matches ``/v2/orders/{order_id}``) and validates the JSON body
against that status's response schema with ``jsonschema`` (Draft 2020-12, which OpenAPI 3.1 schemas
are), formats included (date-time, date, uuid). It returns the problems as one-line strings, so a
test can assert an empty list and read what is wrong when it is not. Error statuses the spec gives no
schema for are checked against Alpaca's ``{code, message}`` error shape, which every trading API
error has (``Error`` in the spec).

Stream messages have no OpenAPI description; ``trade_update_schema`` is the shape Alpaca documents
for ``trade_updates`` (the real frames in ``shared/fixtures/alpaca`` have it), with the ``order``
checked against the spec's ``Order``, and ``stream_bar_schema`` is the market-data spec's
``stock_bar`` / ``crypto_bar`` plus the stream's ``T`` and ``S``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

SPEC_DIR = Path(__file__).parent / "spec"
TRADING_URI = "urn:alpaca:trading-api"
MARKET_DATA_URI = "urn:alpaca:market-data-api"

_formats = FormatChecker()


# A format constrains strings only; other types pass (the schema's ``type`` judges them).
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)", value):
        return False
    dt.datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00")))
    return True


def _date(value: object) -> bool:
    return not isinstance(value, str) or (bool(dt.date.fromisoformat(value)) and len(value) == 10)


def _uuid(value: object) -> bool:
    return not isinstance(value, str) or str(uuid.UUID(value)) == value.lower()


for _name, _check in (("date-time", _date_time), ("date", _date), ("uuid", _uuid)):
    _formats.checkers[_name] = (_check, ValueError)


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    responses: Mapping[str, Any]
    uri: str


def _load(name: str) -> dict[str, Any]:
    data = json.loads((SPEC_DIR / name).read_text())
    assert isinstance(data, dict)
    return data


@cache
def trading_spec() -> dict[str, Any]:
    return _load("trading-api.json")


@cache
def market_data_spec() -> dict[str, Any]:
    return _load("market-data-api.json")


@cache
def _registry() -> Registry[Any]:
    return Registry().with_resources(
        [
            (TRADING_URI, DRAFT202012.create_resource(trading_spec())),
            (MARKET_DATA_URI, DRAFT202012.create_resource(market_data_spec())),
        ]
    )


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    # A path parameter is one segment, except a symbol, which may be a crypto pair (BTC/USD).
    regex = "".join(
        ("(.+)" if "symbol" in p else "([^/]+)") if p.startswith("{") else re.escape(p) for p in parts
    )
    return re.compile(f"^{regex}$")


@cache
def _operations() -> tuple[Operation, ...]:
    found = []
    for uri, spec in ((TRADING_URI, trading_spec()), (MARKET_DATA_URI, market_data_spec())):
        for template, item in spec["paths"].items():
            for method, operation in item.items():
                if method == "parameters":
                    continue
                found.append(
                    Operation(
                        method.upper(), template, _template_regex(template), operation["responses"], uri
                    )
                )
    # Literal paths before templated ones: /v2/stocks/bars is not /v2/stocks/{symbol}/bars.
    return tuple(sorted(found, key=lambda o: (o.template.count("{"), -len(o.template))))


def operation_for(method: str, path: str) -> Operation | None:
    for operation in _operations():
        if operation.method == method.upper() and operation.pattern.match(path):
            return operation
    return None


def validator(schema: Mapping[str, Any], uri: str = TRADING_URI) -> Draft202012Validator:
    """A validator for ``schema``, whose ``#/…`` references resolve inside the spec at ``uri``."""
    wrapped = {**_rebase(schema, uri)}
    return Draft202012Validator(wrapped, registry=_registry(), format_checker=_formats)


def _rebase(node: Any, uri: str) -> Any:
    """``{"$ref": "#/components/…"}`` written as an absolute reference into the spec at ``uri``."""
    if isinstance(node, dict):
        return {
            k: (f"{uri}{v}" if k == "$ref" and isinstance(v, str) and v.startswith("#") else _rebase(v, uri))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rebase(item, uri) for item in node]
    return node


def _resolve(node: Mapping[str, Any], spec: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def problems(instance: Any, schema: Mapping[str, Any], uri: str = TRADING_URI, where: str = "") -> list[str]:
    """Every way ``instance`` breaks ``schema``, one line each (``where``: a prefix naming it)."""
    return [
        f"{where}{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message[:300]}"
        for error in validator(schema, uri).iter_errors(instance)
    ]


ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}

#: Where the published spec cannot be met as written, and how it is read instead. Each is a defect of
#: the spec, not of the server: keep the list short and say why.
SPEC_DEFECTS: dict[tuple[str, str], str] = {
    # ``oneOf`` [TradingActivities, NonTradeActivities]: neither has a required field, so every
    # activity matches both and ``oneOf`` can never pass. Read as ``anyOf``, as the sibling route
    # /v2/account/activities already writes it.
    ("GET", "/v2/account/activities/{activity_type}"): "oneOf read as anyOf",
}


def _one_of_as_any_of(node: Any) -> Any:
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): _one_of_as_any_of(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_one_of_as_any_of(item) for item in node]
    return node


@dataclass
class SpecChecker:
    """Checks responses against the specs; remembers which operations and statuses it saw."""

    def __post_init__(self) -> None:
        self.seen: set[tuple[str, str, int]] = set()

    def check(
        self, method: str, path: str, status: int, body: bytes, headers: Mapping[str, str]
    ) -> list[str]:
        operation = operation_for(method, path)
        where = f"{method} {path} -> {status}: "
        if operation is None:
            if status < 400:
                return [f"{where}answered, but there is no such operation in Alpaca's spec"]
            try:
                return problems(json.loads(body), ERROR_SCHEMA, TRADING_URI, where)
            except ValueError:
                return [f"{where}body is not JSON: {body[:80]!r}"]
        self.seen.add((method.upper(), operation.template, status))
        spec = trading_spec() if operation.uri == TRADING_URI else market_data_spec()
        response = operation.responses.get(str(status))
        found: list[str] = []
        if status == 204:
            return [f"{where}a 204 has a body"] if body else []
        try:
            data = json.loads(body)
        except ValueError:
            return [f"{where}body is not JSON: {body[:80]!r}"]
        if status >= 400:
            # Every Alpaca trading error is {code, message}; the spec types only some of them.
            return problems(data, ERROR_SCHEMA, TRADING_URI, where)
        if response is None:
            return [f"{where}status {status} is not one the spec lists ({sorted(operation.responses)})"]
        response = _resolve(response, spec)
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            if (method.upper(), operation.template) in SPEC_DEFECTS:
                schema = _one_of_as_any_of(schema)
            found.extend(problems(data, schema, operation.uri, where))
        for name in response.get("headers", {}):
            value = headers.get(name)
            if value is None:
                found.append(f"{where}header {name} missing")
            elif not value.isdigit():
                found.append(f"{where}header {name} is not an integer: {value!r}")
        return found


def trade_update_schema() -> dict[str, Any]:
    """A ``trade_updates`` frame, as Alpaca documents it (events and fields)."""
    events = [
        "new", "fill", "partial_fill", "canceled", "expired", "done_for_day", "replaced", "rejected",
        "pending_new", "stopped", "pending_cancel", "pending_replace", "calculated", "suspended",
        "order_replace_rejected", "order_cancel_rejected", "restated", "held",
    ]  # fmt: skip
    decimal = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}
    return {
        "type": "object",
        "required": ["stream", "data"],
        "properties": {
            "stream": {"const": "trade_updates"},
            "data": {
                "type": "object",
                "required": ["event", "order", "timestamp"],
                "properties": {
                    "event": {"enum": events},
                    "order": {"$ref": "#/components/schemas/Order"},
                    "timestamp": {"type": "string", "format": "date-time"},
                    "position_qty": decimal,
                    "price": decimal,
                    "qty": decimal,
                    "execution_id": {"type": "string", "minLength": 1},
                },
                "dependentRequired": {"execution_id": ["price", "qty"]},
            },
        },
    }


def stream_bar_schema(market: str) -> dict[str, Any]:
    """A bar message of the market-data stream: the spec's REST bar plus ``T`` and ``S``."""
    bar = "#/components/schemas/" + ("crypto_bar" if market == "crypto" else "stock_bar")
    return {
        "allOf": [
            {"$ref": bar},
            {
                "type": "object",
                "required": ["T", "S"],
                "properties": {"T": {"const": "b"}, "S": {"type": "string", "minLength": 1}},
            },
        ]
    }
