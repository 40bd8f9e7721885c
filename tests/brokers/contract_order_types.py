"""The broker contract, continued: every Alpaca order type, the same behaviour from every ``Broker``.

Mixed into the contract test classes next to ``BrokerContract`` (the in-process paper broker, and
``AlpacaBroker`` over loopback to the paper server), with the same ``harness`` fixture: stop,
stop-limit, trailing stop (by price and by percent, its mark reported), notional and fractional
market orders, ioc and fok, extended hours, and opg/cls, whose acceptance depends on the hour in New
York (Alpaca's window, worked out here from the NYSE calendar independently of the venue's code).
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest

from autoquant.brokers.paper.sessions import NEW_YORK, nyse
from autoquant.domain.broker import BrokerOrderState, OrderRequest
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce
from autoquant.errors import BrokerRejected
from tests.brokers.contract import BrokerHarness, filled, market, new_id, recording

D = Decimal


def order(harness: BrokerHarness, prefix: str, **terms: Any) -> OrderRequest:
    values: dict[str, Any] = {"side": Side.BUY, "qty": D(2), "time_in_force": TimeInForce.GTC} | terms
    return OrderRequest(client_order_id=new_id(prefix), symbol=harness.symbol, **values)


async def state_of(harness: BrokerHarness, client_order_id: str) -> BrokerOrderState:
    found = await harness.broker.get_by_client_order_id(client_order_id)
    assert found is not None
    return found


def auction_refused_now(time_in_force: TimeInForce) -> bool:
    """Alpaca's window: on a trading day, opg is refused from 9:28 and cls from ten minutes before the
    close, until 19:00 New York time."""
    now = dt.datetime.now(NEW_YORK)
    days = nyse().days(now.date(), now.date())
    if not days:
        return False
    session = days[0]
    edge_ns = (
        session.open_ns - 120 * 10**9 if time_in_force is TimeInForce.OPG else session.close_ns - 600 * 10**9
    )
    evening = dt.datetime.combine(now.date(), dt.time(19), tzinfo=NEW_YORK)
    return edge_ns < time.time_ns() < int(evening.timestamp() * 10**9)


class OrderTypesContract:
    """Every order type; subclasses provide the ``harness`` fixture, as for ``BrokerContract``."""

    async def test_stop_order_rests_then_fills_at_market(self, harness: BrokerHarness) -> None:
        """A buy stop at 105 rests while the price is 100 and fills near 106 once the price trades there."""
        await harness.set_price(harness.symbol, D(100))
        async with recording(harness) as recorder:
            request = order(harness, "stop", order_type=OrderType.STOP, stop_price=D(105))
            state = await harness.broker.submit(request)
            assert (state.status, state.order_type, state.stop_price) == (
                OrderStatus.ACCEPTED,
                OrderType.STOP,
                D(105),
            )
            await harness.set_price(harness.symbol, D(106))
            updates = await recorder.wait_for(request.client_order_id, OrderEventKind.FILL)
        fills = [u.fill for u in updates if u.fill is not None]
        assert sum(f.qty for f in fills) == D(2)
        assert all(D(105) <= f.price <= D(107) for f in fills)

    async def test_stop_limit_order_fills_within_its_limit(self, harness: BrokerHarness) -> None:
        """A buy stop-limit (stop 105, limit 106) triggers at 106 and never pays more than 106."""
        await harness.set_price(harness.symbol, D(100))
        async with recording(harness) as recorder:
            request = order(
                harness, "stlim", order_type=OrderType.STOP_LIMIT, stop_price=D(105), limit_price=D(106)
            )
            await harness.broker.submit(request)
            await harness.set_price(harness.symbol, D(106))
            updates = await recorder.wait_for(request.client_order_id, OrderEventKind.FILL)
        assert all(u.fill.price <= D(106) for u in updates if u.fill is not None)
        assert updates[-1].order.limit_price == D(106)

    async def test_trailing_stop_sell_follows_its_mark_then_fills(self, harness: BrokerHarness) -> None:
        """A sell trailing $2 marks 100 (stop 98), follows the price to 105 (stop 103), ignores the dip
        to 104, and sells at market when the price falls to 102."""
        await harness.set_price(harness.symbol, D(100))
        async with recording(harness) as recorder:
            await filled(harness, recorder, market(harness.symbol, new_id("own"), "4"))
            request = order(
                harness, "trail", side=Side.SELL, order_type=OrderType.TRAILING_STOP, trail_price=D(2)
            )
            state = await harness.broker.submit(request)
            assert (state.hwm, state.stop_price, state.trail_price) == (D(100), D(98), D(2))
            await harness.set_price(harness.symbol, D(105))

            async def followed() -> bool:
                now = await state_of(harness, request.client_order_id)
                return (now.hwm, now.stop_price) == (D(105), D(103))

            await harness.wait_until(followed, "the mark to follow the price to 105")
            await harness.set_price(harness.symbol, D(104))
            assert (await state_of(harness, request.client_order_id)).status is OrderStatus.ACCEPTED
            await harness.set_price(harness.symbol, D(102))
            updates = await recorder.wait_for(request.client_order_id, OrderEventKind.FILL)
        fills = [u.fill for u in updates if u.fill is not None]
        assert sum(f.qty for f in fills) == D(2)
        assert all(D(101) <= f.price <= D(102) for f in fills)
        assert updates[-1].order.hwm == D(105)

    async def test_trailing_stop_buy_by_percent_marks_the_low(self, harness: BrokerHarness) -> None:
        """A buy trailing 1 % marks the lowest price (95, stop 95.95) and buys when the price turns up."""
        await harness.set_price(harness.symbol, D(100))
        async with recording(harness) as recorder:
            request = order(harness, "trailp", order_type=OrderType.TRAILING_STOP, trail_percent=D(1))
            state = await harness.broker.submit(request)
            assert (state.hwm, state.stop_price, state.trail_percent) == (D(100), D(101), D(1))
            await harness.set_price(harness.symbol, D(95))

            async def followed() -> bool:
                return (await state_of(harness, request.client_order_id)).stop_price == D("95.95")

            await harness.wait_until(followed, "the stop to follow the low to 95.95")
            await harness.set_price(harness.symbol, D(96))
            updates = await recorder.wait_for(request.client_order_id, OrderEventKind.FILL)
        assert all(D(96) <= u.fill.price <= D(97) for u in updates if u.fill is not None)

    async def test_notional_buy_is_sized_when_it_fills(self, harness: BrokerHarness) -> None:
        """A $250 market buy has no quantity until it fills; then it is the amount's worth at the fill
        price, rounded down to 9 decimals, in one execution."""
        await harness.set_price(harness.symbol, D(100))
        async with recording(harness) as recorder:
            request = order(harness, "notional", qty=None, notional=D(250), time_in_force=TimeInForce.DAY)
            state = await harness.broker.submit(request)
            assert (state.notional, state.status) == (D(250), OrderStatus.ACCEPTED)
            updates = await recorder.wait_for(request.client_order_id, OrderEventKind.FILL)
        (fill,) = [u.fill for u in updates if u.fill is not None]
        assert fill.qty == (D(250) / fill.price).quantize(D("1e-9"), rounding=ROUND_DOWN)
        final = await state_of(harness, request.client_order_id)
        assert (final.status, final.filled_qty, final.notional) == (OrderStatus.FILLED, fill.qty, D(250))

    async def test_fractional_market_order_fills_exactly(self, harness: BrokerHarness) -> None:
        """A market day buy of 0.5 shares fills exactly 0.5, and the position holds 0.5."""
        await harness.set_price(harness.symbol, D(100))
        async with recording(harness) as recorder:
            request = order(harness, "frac", qty=D("0.5"), time_in_force=TimeInForce.DAY)
            updates = await filled(harness, recorder, request)
        assert sum(u.fill.qty for u in updates if u.fill is not None) == D("0.5")
        (position,) = await harness.broker.positions()
        assert position.qty == D("0.5")

    async def test_ioc_and_fok_that_cannot_trade_are_canceled(self, harness: BrokerHarness) -> None:
        """An ioc and a fok limit buy below the market are canceled at their first chance, unfilled."""
        await harness.set_price(harness.symbol, D(100))
        async with recording(harness) as recorder:
            for tif in (TimeInForce.IOC, TimeInForce.FOK):
                request = order(
                    harness, tif.value, order_type=OrderType.LIMIT, limit_price=D(90), time_in_force=tif
                )
                await harness.broker.submit(request)
                updates = await recorder.wait_for(request.client_order_id, OrderEventKind.CANCELED)
                assert updates[-1].order.filled_qty == 0

    async def test_extended_hours_limit_order_is_accepted_and_reported(self, harness: BrokerHarness) -> None:
        """A day limit order eligible for extended hours is accepted with extended_hours true."""
        await harness.set_price(harness.symbol, D(100))
        request = order(
            harness,
            "ext",
            order_type=OrderType.LIMIT,
            limit_price=D(90),
            time_in_force=TimeInForce.DAY,
            extended_hours=True,
        )
        state = await harness.broker.submit(request)
        assert (state.extended_hours, state.status) == (True, OrderStatus.ACCEPTED)

    @pytest.mark.parametrize("time_in_force", [TimeInForce.OPG, TimeInForce.CLS])
    async def test_auction_orders_follow_alpacas_window(
        self, harness: BrokerHarness, time_in_force: TimeInForce
    ) -> None:
        """An opg/cls market order is refused (422) inside Alpaca's closed window and otherwise accepted
        to wait for its auction (none is minutes away: the window starts before each)."""
        await harness.set_price(harness.symbol, D(100))
        request = order(harness, time_in_force.value, time_in_force=time_in_force)
        if auction_refused_now(time_in_force):
            with pytest.raises(BrokerRejected) as refused:
                await harness.broker.submit(request)
            assert refused.value.status == 422
            return
        state = await harness.broker.submit(request)
        assert (state.time_in_force, state.status) == (time_in_force, OrderStatus.ACCEPTED)

    @pytest.mark.parametrize(
        "terms",
        [
            {"order_type": OrderType.TRAILING_STOP, "trail_price": D(1), "time_in_force": TimeInForce.IOC},
            {"qty": None, "notional": D(50), "time_in_force": TimeInForce.GTC},
            {"qty": D("0.5"), "order_type": OrderType.LIMIT, "limit_price": D(90)},
            {"order_type": OrderType.STOP, "stop_price": D(110), "time_in_force": TimeInForce.OPG},
        ],
        ids=["trailing-ioc", "notional-gtc", "fractional-limit", "stop-opg"],
    )
    async def test_combinations_alpaca_refuses_are_refused_with_422(
        self, harness: BrokerHarness, terms: dict[str, Any]
    ) -> None:
        """Orders whose terms Alpaca refuses (trailing ioc, notional gtc, fractional limit, stop on open)
        are refused with 422 and never exist."""
        await harness.set_price(harness.symbol, D(100))
        request = order(harness, "bad", **terms)
        with pytest.raises(BrokerRejected) as refused:
            await harness.broker.submit(request)
        assert refused.value.status == 422
        assert await harness.broker.get_by_client_order_id(request.client_order_id) is None
