"""The manual-orders worker reserves each request with every term it carries (a trailing stop keeps its
trail, a notional order its dollars) and hands it to execution; a request whose terms are not an order
(written around the command layer) is said once in the log and never reserved, and the rest go on."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from structlog.testing import capture_logs

from autoquant.domain.orders import OrderStatus
from autoquant.domain.values import OrderType
from autoquant.ledger.surface import ManualOrder
from autoquant.workers.manual_orders import ManualOrders
from tests.workers.test_execution import Rig, make
from tests.workers.test_replace_and_flatten import send_fresh

__all__ = ["make"]

MakeRig = Callable[..., Coroutine[Any, Any, Rig]]


def request(coid: str, qty: str, order_type: str, **terms: Any) -> ManualOrder:
    return ManualOrder(
        coid, "operator", "AAPL", "buy", Decimal(qty), order_type, "gtc", None, "r", "me", 1, **terms
    )


async def test_requests_are_reserved_with_their_terms_and_a_bad_one_is_skipped(make: MakeRig) -> None:
    """A trailing stop by percent is reserved and accepted with its trail; a trailing stop without a
    trail (not an order) is logged once and never reserved, on every pass."""
    rig = await make()
    for manual in (
        request("bad-1", "1", "trailing_stop"),
        request("tp-1", "2", "trailing_stop", trail_percent=Decimal("1.5")),
    ):
        assert (await rig.ledger.request_manual_order(manual))[0]
    worker = ManualOrders(rig.ledger, rig.worker, rig.clock)
    with capture_logs() as logs:
        assert await worker.carry_out() == 1
        assert await worker.carry_out() == 0
    assert [entry["client_order_id"] for entry in logs if entry["event"] == "manual_order_unplaceable"] == [
        "bad-1"
    ]
    assert await rig.ledger.get_order("bad-1") is None
    await send_fresh(rig)
    placed = await rig.ledger.get_order("tp-1")
    assert placed is not None and placed.status is OrderStatus.ACCEPTED
    assert (placed.order_type, placed.trail_percent, placed.qty) == (
        OrderType.TRAILING_STOP,
        Decimal("1.5"),
        Decimal(2),
    )
