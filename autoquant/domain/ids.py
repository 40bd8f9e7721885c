"""Deterministic identifiers.

A client order id is a function of what was decided, never of the clock or the process: re-running
the same decision after a restart yields the same id, and the ledger's UNIQUE constraint refuses a
second reservation. ``hashlib`` is used, not ``hash()``, so ids agree across processes and versions.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from autoquant.domain.values import Side, to_ns

CLIENT_ORDER_ID_MAX = 48


def _digest(*parts: str) -> str:
    canonical = "\x1f".join(parts).encode("utf-8")
    return hashlib.sha256(canonical).hexdigest()


def client_order_id(
    strategy_id: str, symbol: str, decision_time: datetime, side: Side, sequence: int = 0
) -> str:
    """``aq-`` and 40 hex digits of SHA-256 over the decision's identity (43 characters)."""
    if sequence < 0:
        raise ValueError("sequence must not be negative")
    digest = _digest("coid-v1", strategy_id, symbol, str(to_ns(decision_time)), side.value, str(sequence))
    return f"aq-{digest[:40]}"


def decision_id(strategy_id: str, symbol: str, decision_time: datetime) -> str:
    """One decision per strategy, symbol and bar: ``d-`` and 24 hex digits."""
    return f"d-{_digest('decision-v1', strategy_id, symbol, str(to_ns(decision_time)))[:24]}"


_HEX = frozenset("0123456789abcdef")


def follows_scheme(client_order_id: str) -> bool:
    """Whether ``client_order_id`` has the shape ``client_order_id`` gives (``aq-`` and 40 hex digits).

    The hash cannot be reversed, so this says "one of ours", never which decision made it.
    """
    digest = client_order_id.removeprefix("aq-")
    return len(client_order_id) == 43 and len(digest) == 40 and set(digest) <= _HEX


def replacement_client_order_id(replaced: str, request_seq: int) -> str:
    """The client order id of the order that replaces ``replaced`` for the operator's request
    ``request_seq``: the same shape as ``client_order_id`` (``aq-`` and 40 hex digits), so a restored
    ledger adopts it like any of ours, and the same request carried out twice is one order."""
    if request_seq < 0:
        raise ValueError("request_seq must not be negative")
    return f"aq-{_digest('replace-v1', replaced, str(request_seq))[:40]}"
