"""``GET /``: the status page, server-rendered (Jinja2, no JavaScript), refreshing itself."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from autoquant.domain.values import utc_day_start_ns
from autoquant.operator import inspection
from autoquant.operator.api.guards import require_token
from autoquant.operator.api.metrics import broker_reachable
from autoquant.operator.api.state import ApiState
from autoquant.operator.text import order_size

router = APIRouter()
_templates = Environment(
    loader=PackageLoader("autoquant.operator.api", "templates"), autoescape=select_autoescape(["html"])
)
_templates.filters["order_size"] = order_size  # a notional order's dollars until it has a qty
REFRESH_S = 5


def equity_svg(points: list[tuple[int, Decimal]], width: int = 600, height: int = 160) -> str:
    """An inline SVG polyline of equity over time (empty text without two points)."""
    if len(points) < 2:
        return ""
    t0, t1 = points[0][0], points[-1][0]
    values = [float(v) for _, v in points]
    low, high = min(values), max(values)
    span_t, span_v = max(1, t1 - t0), (high - low) or 1.0
    coords = " ".join(
        f"{(t - t0) / span_t * width:.1f},{height - (float(v) - low) / span_v * height:.1f}"
        for t, v in points
    )
    return (
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="equity curve">'
        f'<polyline fill="none" stroke="#2a6" stroke-width="2" points="{coords}"/></svg>'
    )


@router.get("/", response_class=HTMLResponse, dependencies=[Depends(require_token)])
async def page(request: Request) -> HTMLResponse:
    """The account at a glance, for a person (a phone is enough)."""
    state: ApiState = request.app.state.api
    reader = await state.reader()
    now = time.time_ns()
    status = await inspection.status(reader, state.status_file, now)
    orders = await inspection.orders(reader, open_only=True)
    fills = (await inspection.fills(reader))[-20:]
    decisions = await reader.decisions(limit=500, symbol=None)
    by_reason: dict[tuple[str, str, str], int] = {}
    for d in decisions:
        key = (d.strategy_id, d.action, d.reason)
        by_reason[key] = by_reason.get(key, 0) + 1
    curve = await reader.equity_curve(utc_day_start_ns(now))
    last = await reader.last_reconciliation()
    reachable = broker_reachable(None if last is None else last.finished_ns, now, state.config)
    token = request.query_params.get("token")
    context: dict[str, Any] = {
        "status": status,
        "broker_reachable": reachable if status["daemon"]["running"] else None,
        "orders": orders,
        "fills": list(reversed(fills)),
        "by_reason": sorted(by_reason.items()),
        "equity_svg": equity_svg(curve),
        "refresh_s": REFRESH_S,
        "refresh_url": f"/?token={token}" if token else "/",
    }
    html = _templates.get_template("status.html").render(**context)
    return HTMLResponse(html)
