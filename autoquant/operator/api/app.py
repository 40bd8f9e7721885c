"""The FastAPI application: routes, the guards around them, and errors as JSON a person can act on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from autoquant.errors import AutoquantError
from autoquant.operator import commands
from autoquant.operator.api import actions, events, page, reads, writes
from autoquant.operator.api.cache import ReadCache
from autoquant.operator.api.guards import BodyLimit, require_token
from autoquant.operator.api.metrics import Metrics
from autoquant.operator.api.models import SCHEMA_VERSION, ErrorBody, Health
from autoquant.operator.api.state import ApiState, LedgerUnavailable

TITLE = "autoquant operator API"
VERSION = "1"
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or wrong bearer token"},
    404: {"model": ErrorBody, "description": "no such thing in the ledger"},
    409: {"model": ErrorBody, "description": "the ledger's state refuses the request"},
    422: {"model": ErrorBody, "description": "a field is wrong; `field` names it"},
    503: {"model": ErrorBody, "description": "the ledger cannot be read yet"},
}


def _error(status: int, message: str, field: str | None = None, headers: Any = None) -> JSONResponse:
    body = {"schema_version": SCHEMA_VERSION, "error": " ".join(message.split()), "field": field}
    return JSONResponse(body, status_code=status, headers=headers)


def _field(location: Sequence[Any]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def create_app(state: ApiState) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await state.close()

    app = FastAPI(
        title=TITLE,
        version=VERSION,
        lifespan=lifespan,
        responses=_ERRORS,
        openapi_url=None,  # served below, behind the token like everything but /health
        docs_url=None,
        redoc_url=None,
    )
    app.state.api = state
    metrics = Metrics(state.config)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        where = _field(first.get("loc", ()))
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        return _error(422, f"{where}: {message}", where)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail), headers=error.headers)

    @app.exception_handler(commands.CommandError)
    async def refused(request: Request, error: commands.CommandError) -> JSONResponse:
        status = 404 if isinstance(error, commands.CommandNotFound) else 409
        if isinstance(error, commands.CommandInvalid):
            status = 422
        return _error(status, str(error), error.field)

    @app.exception_handler(LedgerUnavailable)
    async def unavailable(request: Request, error: LedgerUnavailable) -> JSONResponse:
        return _error(503, str(error))

    @app.exception_handler(AutoquantError)
    async def operator_error(request: Request, error: AutoquantError) -> JSONResponse:
        return _error(409, str(error))

    @app.get("/health", response_model=Health, tags=["meta"])
    async def health() -> Health:
        """Liveness without a token: the API answers; `ledger` says whether it can read the ledger."""
        try:
            await state.reader()
        except LedgerUnavailable as error:
            return Health(ok=True, ledger=str(error))
        return Health(ok=True, ledger="readable")

    @app.get(
        "/metrics",
        dependencies=[Depends(require_token)],
        response_class=Response,
        tags=["meta"],
        responses={200: {"content": {"text/plain": {}}}},
    )
    async def metrics_route() -> Response:
        """Prometheus text exposition (prometheus-client, its own registry)."""
        body = await metrics.render(await state.reader(), state.status_file)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/openapi.json", dependencies=[Depends(require_token)], include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    app.include_router(reads.router)
    app.include_router(writes.router)
    app.include_router(actions.router)
    app.include_router(events.router)
    app.include_router(page.router)
    app.add_middleware(ReadCache, state=state, ttl_s=state.config.api.cache_s)
    app.add_middleware(BodyLimit, max_bytes=state.config.api.max_body_bytes)
    return app
