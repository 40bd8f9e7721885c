"""``GET /v2/account/portfolio/history`` from the exchange's own equity record.

The exchange samples its equity whenever a price or its cash moves, keeping the last sample of each
minute. A history is a series of windows of ``timeframe`` (1Min, 5Min, 15Min, 1H, 1D) over
``period`` (``nD``, ``nW``, ``nM``, ``nA``) or ``start``/``end``: each window's equity is the last sample
at or before its end (the venue trades around the clock, so every window counts, as Alpaca's
``intraday_reporting=continuous``). Windows before the first sample are left out. ``base_value`` is
the equity before the first window (or that window's own, for a new account); ``profit_loss`` and
``profit_loss_pct`` are measured from it. Timestamps are the windows' starts in Unix seconds, as at
Alpaca; money goes out as JSON numbers, as Alpaca writes it here.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

NS = 1_000_000_000
TIMEFRAMES = {"1Min": 60, "5Min": 300, "15Min": 900, "1H": 3600, "1D": 86_400}
PERIOD_DAYS = {"D": 1, "W": 7, "M": 30, "A": 365}
#: A month of minutes: more windows than that is a request to narrow, not to answer.
MAX_WINDOWS = 50_000


class HistoryRequestError(ValueError):
    """A request the history cannot answer; the message says what to change."""


@dataclass(frozen=True)
class HistoryRequest:
    timeframe: str
    start_ns: int
    end_ns: int


def parse_request(
    *, period: str | None, timeframe: str | None, start_ns: int | None, end_ns: int | None, now_ns: int
) -> HistoryRequest:
    """Alpaca's rules: ``period`` and both ends exclude each other; the period defaults to 1M and the
    timeframe to 1Min under 7 days, 15Min under 30, else 1D; a period over 30 days takes 1D only."""
    if period and start_ns is not None and end_ns is not None:
        raise HistoryRequestError("period cannot be combined with both start and end: drop one of them")
    span_ns = None
    if period or start_ns is None or end_ns is None:
        match = re.fullmatch(r"(\d+)([DWMA])", period or "1M")
        if match is None:
            raise HistoryRequestError(f"period: {period!r} is not a number followed by D, W, M or A")
        span_ns = int(match[1]) * PERIOD_DAYS[match[2]] * 86_400 * NS
    if end_ns is None:
        end_ns = now_ns if start_ns is None or span_ns is None else start_ns + span_ns
    if start_ns is None:
        assert span_ns is not None
        start_ns = end_ns - span_ns
    if end_ns <= start_ns:
        raise HistoryRequestError("end must be after start")
    days = (end_ns - start_ns) / (86_400 * NS)
    chosen = timeframe or ("1Min" if days < 7 else "15Min" if days < 30 else "1D")
    if chosen not in TIMEFRAMES:
        raise HistoryRequestError(f"timeframe: {chosen!r} is not one of {list(TIMEFRAMES)}")
    if days > 30 and chosen != "1D":
        raise HistoryRequestError("a history longer than 30 days takes timeframe 1D only")
    step = TIMEFRAMES[chosen] * NS
    if (end_ns - start_ns) // step > MAX_WINDOWS:
        raise HistoryRequestError(
            f"more than {MAX_WINDOWS} windows: ask a shorter period or a coarser timeframe"
        )
    return HistoryRequest(chosen, start_ns, min(end_ns, now_ns))


def history_json(request: HistoryRequest, samples: Sequence[tuple[int, Decimal]]) -> dict[str, Any]:
    """The history over ``samples`` ((time, equity), oldest first)."""
    step = TIMEFRAMES[request.timeframe] * NS
    times = [ts for ts, _ in samples]
    first_window = request.start_ns - request.start_ns % step
    if samples:
        first_window = max(first_window, samples[0][0] - samples[0][0] % step)
    windows: list[tuple[int, Decimal]] = []
    start = first_window
    while samples and start <= request.end_ns:
        i = bisect.bisect_right(times, min(start + step - 1, request.end_ns))
        if i > 0:
            windows.append((start, samples[i - 1][1]))
        start += step
    before = bisect.bisect_left(times, first_window)
    base = samples[before - 1][1] if before > 0 else (windows[0][1] if windows else None)
    equity = [float(e) for _, e in windows]
    profit = [float(e - base) if base is not None else 0.0 for _, e in windows]
    pct = [float((e - base) / base) if base else 0.0 for _, e in windows]
    return {
        "timestamp": [ts // NS for ts, _ in windows],
        "equity": equity,
        "profit_loss": profit,
        "profit_loss_pct": pct,
        "base_value": None if base is None else float(base),
        "timeframe": request.timeframe,
    }
