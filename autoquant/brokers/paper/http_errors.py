"""Alpaca's error answers and the query-parameter readers every paper-server route shares.

Every error the paper server gives is Alpaca's ``{"code": …, "message": …}`` (alpaca-py's
``APIError.code`` reads ``code``), with Alpaca's statuses and codes: 400 (40010000) a malformed
market-data request, 401 (40110000) wrong keys, 403 (40310000) refused for funds or a suspended
account, 404 (40410000) an unknown order, position, asset or route, 405 (40510000) a method the route
does not take, 422 (40010000) an invalid request body or parameter, 429 (42910000) and 503 (50010000)
when a fault is injected.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TypeVar

from fastapi.responses import JSONResponse

from autoquant.brokers.alpaca_mapping import AlpacaPayloadError, parse_time_ns
from autoquant.brokers.paper.alpaca_json import error_json
from autoquant.errors import BrokerError

CODE_INVALID = 40010000
CODE_UNAUTHORIZED = 40110000
CODE_FORBIDDEN = 40310000
CODE_NOT_FOUND = 40410000
CODE_METHOD_NOT_ALLOWED = 40510000
CODE_RATE_LIMIT = 42910000
CODE_SERVER = 50010000

T = TypeVar("T", bound=str)


class AlpacaHTTPError(Exception):
    """Answer the request with Alpaca's error shape."""

    def __init__(self, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(error: AlpacaHTTPError) -> JSONResponse:
    return JSONResponse(
        error_json(error.code, error.message), status_code=error.status, headers=error.headers
    )


def from_broker_error(error: BrokerError) -> AlpacaHTTPError:
    status = error.status or 422
    return AlpacaHTTPError(
        status, error.code or (CODE_INVALID if status == 422 else status * 100_000), str(error)
    )


def invalid(message: str) -> AlpacaHTTPError:
    return AlpacaHTTPError(422, CODE_INVALID, message)


def not_found(message: str) -> AlpacaHTTPError:
    return AlpacaHTTPError(404, CODE_NOT_FOUND, message)


def time_param(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return parse_time_ns(value, name)
    except AlpacaPayloadError as error:
        raise invalid(str(error)) from None


def int_param(value: str | None, name: str, default: int, maximum: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise invalid(f"{name}: {value!r} is not an integer") from None
    if number < 1:
        raise invalid(f"{name} must be at least 1")
    return min(number, maximum)


def decimal_param(value: str | None, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise invalid(f"{name}: {value!r} is not a number") from None
    if not number.is_finite():
        raise invalid(f"{name}: {value!r} is not a finite number")
    return number


def choice(value: str | None, name: str, choices: tuple[T, ...], default: T) -> T:
    if value is None or value == "":
        return default
    for option in choices:
        if value == option:
            return option
    raise invalid(f"{name}: {value!r} is not one of {list(choices)}")
