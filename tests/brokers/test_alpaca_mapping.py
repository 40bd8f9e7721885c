"""Alpaca JSON → domain: every status and event maps, unknowns are marked, decimals stay exact."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from autoquant.brokers.alpaca_mapping import (
    EVENT_MAP,
    INFORMATIONAL_EVENTS,
    STATUS_BY_FILL,
    STATUS_MAP,
    AlpacaPayloadError,
    error_code,
    format_time_ns,
    map_event,
    map_status,
    parse_account,
    parse_fill_activity,
    parse_order,
    parse_position,
    parse_time_ns,
    parse_trade_update,
)
from autoquant.brokers.alpaca_orders import order_body
from autoquant.brokers.paper.alpaca_json import (
    EVENT_WORD,
    account_json,
    fill_activities_json,
    order_json,
    position_json,
    trade_update_json,
)
from autoquant.domain.broker import BrokerAccount, BrokerOrderState, BrokerPosition, OrderRequest, OrderUpdate
from autoquant.domain.fills import Fill
from autoquant.domain.orders import OrderEventKind, OrderStatus
from autoquant.domain.values import OrderType, Side, TimeInForce

FIXTURES = Path(__file__).parents[2] / ".." / "shared" / "fixtures" / "alpaca"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(),
    reason=f"the shared Alpaca fixtures are not checked out beside the repo ({FIXTURES})",
)

# Every status alpaca-py 0.44 knows (alpaca.trading.enums.OrderStatus).
ALPACA_STATUSES = [
    "new",
    "partially_filled",
    "filled",
    "done_for_day",
    "canceled",
    "expired",
    "replaced",
    "pending_cancel",
    "pending_replace",
    "pending_review",
    "accepted",
    "pending_new",
    "accepted_for_bidding",
    "stopped",
    "rejected",
    "suspended",
    "calculated",
    "held",
]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@needs_fixtures
def test_partially_filled_order_fixture_maps_exactly() -> None:
    """The real partially-filled order becomes a PARTIALLY_FILLED state with exact decimals and ns times."""
    order = parse_order(fixture("order_partially_filled.json"))
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.raw_status == "partially_filled"
    assert order.qty == Decimal("2")
    assert order.filled_qty == Decimal("1")
    assert order.filled_avg_price == Decimal("149.87")
    assert order.limit_price == Decimal("150")
    assert order.order_type is OrderType.LIMIT
    assert order.time_in_force is TimeInForce.GTC
    assert order.side is Side.BUY
    assert order.created_ns == 1702420284668464435
    assert order.updated_ns == 1702420285102504673


@needs_fixtures
def test_fill_fixture_carries_execution_id_and_exact_amounts() -> None:
    """A real fill event yields a FILL update whose Fill is keyed by execution_id, amounts exact."""
    update = parse_trade_update(fixture("trade_update_fill.json"), local_ts_ns=5)
    assert update is not None
    assert update.kind is OrderEventKind.FILL
    assert update.fill is not None
    assert update.fill.execution_id == "2f63ea93-423d-4169-b3f6-3fdafc10c418"
    assert update.fill.qty == Decimal("1790.86")
    assert update.fill.price == Decimal("105.8988475")
    assert update.fill.client_order_id == "4642fd68-d59a-47d7-a9ac-e22f536828d1"
    assert update.order.status is OrderStatus.FILLED
    # created_at carries a -04:00 offset: converted to UTC exactly.
    assert update.order.created_ns == parse_time_ns("2022-04-19T17:45:04.981350886Z")
    assert update.broker_ts_ns == 1650390305024916716


@needs_fixtures
def test_partial_fill_fixture_maps_to_partial_fill() -> None:
    """A real partial_fill event maps to PARTIAL_FILL with the fill's own qty, not the cumulative."""
    update = parse_trade_update(fixture("trade_update_partial_fill.json"), local_ts_ns=5)
    assert update is not None
    assert update.kind is OrderEventKind.PARTIAL_FILL
    assert update.fill is not None
    assert update.fill.qty == Decimal("1")
    assert update.order.filled_qty == Decimal("1")


@needs_fixtures
def test_account_and_position_fixtures_map_exactly() -> None:
    """Account cash (negative here) and the position's qty and entry price stay exact."""
    account = parse_account(fixture("account.json"))
    assert account.cash == Decimal("-23140.2")
    assert account.buying_power == Decimal("262113.632")
    position = parse_position(fixture("position.json"))
    assert position.qty == Decimal("5")
    assert position.avg_entry_price == Decimal("100.0")


@needs_fixtures
def test_error_fixtures_yield_code_and_message() -> None:
    """Alpaca's error bodies give their numeric code and message."""
    errors = fixture("errors.json")
    assert error_code(json.dumps(errors["duplicate_client_order_id_422"])) == (
        40010001,
        "client_order_id must be unique",
    )
    assert error_code("<html>bad gateway</html>") == (None, "<html>bad gateway</html>")


@pytest.mark.parametrize("raw_status", ALPACA_STATUSES)
def test_every_alpaca_status_maps_to_a_known_state(raw_status: str) -> None:
    """Every status alpaca-py knows maps to a real state (never the UNKNOWN marker)."""
    assert raw_status in STATUS_MAP or raw_status in STATUS_BY_FILL
    status = map_status(raw_status, filled_qty=Decimal(0), qty=Decimal(1))
    assert status is not OrderStatus.UNKNOWN


def test_status_by_fill_follows_filled_quantity() -> None:
    """Held-style statuses (done_for_day …) derive the state from how much has filled."""
    assert map_status("done_for_day", filled_qty=Decimal(0), qty=Decimal(2)) is OrderStatus.ACCEPTED
    assert map_status("done_for_day", filled_qty=Decimal(1), qty=Decimal(2)) is OrderStatus.PARTIALLY_FILLED
    assert map_status("calculated", filled_qty=Decimal(2), qty=Decimal(2)) is OrderStatus.FILLED


def test_unknown_status_gives_the_unknown_marker_not_a_crash() -> None:
    """An order with a status word we have never seen parses, marked UNKNOWN with the raw word kept."""
    raw = order_json(_order())
    raw["status"] = "teleported"
    order = parse_order(raw)
    assert order.status is OrderStatus.UNKNOWN
    assert order.raw_status == "teleported"


@pytest.mark.parametrize("event", sorted(EVENT_MAP))
def test_every_mapped_event_maps(event: str) -> None:
    """Every trade_updates event autoquant tracks has a domain event kind."""
    assert isinstance(map_event(event), OrderEventKind)


@pytest.mark.parametrize("event", sorted(INFORMATIONAL_EVENTS))
def test_informational_events_map_to_none(event: str) -> None:
    """Events that change nothing tracked map to None (skipped and logged by the adapter)."""
    assert map_event(event) is None


def test_unknown_event_raises_typed_error_carrying_payload() -> None:
    """An unknown event (trade_bust) raises AlpacaPayloadError with the raw frame, not a crash."""
    frame = trade_update_json(_update(OrderEventKind.ACCEPTED), position_qty=Decimal(0))
    frame["data"]["event"] = "trade_bust"
    with pytest.raises(AlpacaPayloadError, match="trade_bust"):
        parse_trade_update(frame, local_ts_ns=1)


def test_missing_field_raises_typed_error_naming_it() -> None:
    """An order with neither qty nor notional is refused with the field named."""
    raw = order_json(_order())
    raw["qty"] = None
    with pytest.raises(AlpacaPayloadError, match="qty"):
        parse_order(raw)


def test_unsupported_order_type_raises_typed_error() -> None:
    """An order type Alpaca does not publish is refused by name, not mapped to something else."""
    raw = order_json(_order())
    raw["type"] = raw["order_type"] = "pegged"
    with pytest.raises(AlpacaPayloadError, match="type"):
        parse_order(raw)


def test_trailing_stop_maps_with_its_trail_mark_and_stop() -> None:
    """A trailing stop from Alpaca keeps trail_percent, hwm and the stop it has moved to, exactly."""
    raw = order_json(_order())
    raw.update(type="trailing_stop", order_type="trailing_stop", trail_percent="2.5", hwm="101.20")
    raw.update(stop_price="98.67", limit_price=None, side="sell")
    state = parse_order(raw)
    assert state.order_type is OrderType.TRAILING_STOP
    assert (state.trail_percent, state.trail_price) == (Decimal("2.5"), None)
    assert (state.hwm, state.stop_price) == (Decimal("101.20"), Decimal("98.67"))


def test_notional_order_maps_with_qty_unknown_until_filled() -> None:
    """A notional order (Alpaca's qty null) reads qty 0 while open and its filled qty once filled."""
    raw = order_json(_order())
    raw.update(qty=None, notional="50", filled_qty="0", status="new", limit_price=None)
    raw["type"] = raw["order_type"] = "market"
    pending = parse_order(raw)
    assert (pending.qty, pending.notional, pending.status) == (Decimal(0), Decimal(50), OrderStatus.ACCEPTED)
    raw.update(filled_qty="0.333333333", filled_avg_price="150", status="filled")
    done = parse_order(raw)
    assert (done.qty, done.status) == (Decimal("0.333333333"), OrderStatus.FILLED)


def test_stop_limit_order_maps_with_both_prices() -> None:
    """A stop_limit order from Alpaca keeps its stop and limit prices exactly."""
    raw = order_json(_order())
    raw["type"] = raw["order_type"] = "stop_limit"
    raw["stop_price"], raw["limit_price"] = "101.5", "102.25"
    parsed = parse_order(raw)
    assert (parsed.order_type.value, parsed.stop_price, parsed.limit_price) == (
        "stop_limit",
        Decimal("101.5"),
        Decimal("102.25"),
    )


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T00:00:00.000000001Z", 1),
        ("1970-01-01T00:00:01.5+00:00", 1_500_000_000),
        ("1969-12-31T20:00:00-04:00", 0),
    ],
)
def test_timestamps_convert_to_exact_utc_nanoseconds(text: str, ns: int) -> None:
    """RFC 3339 timestamps with any offset and up to 9 fractional digits become exact UTC ns."""
    assert parse_time_ns(text) == ns


def test_time_formatting_round_trips() -> None:
    """Formatting then parsing a nanosecond timestamp gives it back exactly."""
    ns = 1702420284668464435
    assert parse_time_ns(format_time_ns(ns)) == ns


def test_bad_timestamp_raises_typed_error() -> None:
    """A naive or malformed timestamp is refused, not guessed."""
    with pytest.raises(AlpacaPayloadError):
        parse_time_ns("2023-12-12T22:31:24")


def test_server_json_round_trips_through_the_mapping() -> None:
    """What the paper server writes, the adapter reads back to the same domain objects."""
    order = _order(filled=Decimal("0.3"))
    assert parse_order(order_json(order)) == order.model_copy(update={"raw_status": "partially_filled"})
    for kind in EVENT_WORD:
        if kind in (OrderEventKind.SUBMIT_UNKNOWN, OrderEventKind.DENIED):
            continue
        update = _update(kind)
        parsed = parse_trade_update(trade_update_json(update, position_qty=Decimal(1)), local_ts_ns=9)
        assert parsed is not None
        assert parsed.kind is kind
        assert parsed.fill == (update.fill.model_copy(update={"local_ts_ns": 9}) if update.fill else None)
    position = BrokerPosition(symbol="AAPL", qty=Decimal("-1.5"), avg_entry_price=Decimal("10.25"))
    assert parse_position(position_json(position, Decimal("11"))) == position
    account = BrokerAccount(cash=Decimal("1.10"), equity=Decimal("2.20"), buying_power=Decimal("3.30"))
    assert parse_account(account_json(account, long_value=Decimal(0), short_value=Decimal(0))) == account


def test_fill_activities_round_trip_with_cumulative_quantities() -> None:
    """FILL activities carry cum/leaves per order and parse back to the same fills."""
    order = _order(filled=Decimal("1"))
    fills = [_fill("e1", Decimal("0.4")), _fill("e2", Decimal("0.6"))]
    activities = fill_activities_json(fills, {order.broker_order_id: order})
    assert [a["type"] for a in activities] == ["partial_fill", "fill"]
    assert [a["cum_qty"] for a in activities] == ["0.4", "1"]  # Alpaca writes no trailing zeros
    parsed = [parse_fill_activity(a, client_order_id="c-1", local_ts_ns=7) for a in activities]
    assert parsed == fills
    assert (
        parse_fill_activity(
            {**activities[0], "id": "20220419134505024::e1"}, client_order_id="c-1", local_ts_ns=7
        ).execution_id
        == "e1"
    )


def _order(filled: Decimal = Decimal(0)) -> BrokerOrderState:
    status = OrderStatus.ACCEPTED if filled == 0 else OrderStatus.PARTIALLY_FILLED
    return BrokerOrderState(
        broker_order_id="b-1",
        client_order_id="c-1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal("1"),
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.DAY,
        limit_price=Decimal("100.01"),
        status=status,
        filled_qty=filled,
        filled_avg_price=Decimal("100.005") if filled else None,
        created_ns=1_700_000_000_123_456_789,
        updated_ns=1_700_000_001_000_000_001,
    )


def _fill(execution_id: str, qty: Decimal) -> Fill:
    return Fill(
        execution_id=execution_id,
        client_order_id="c-1",
        broker_order_id="b-1",
        symbol="AAPL",
        side=Side.BUY,
        qty=qty,
        price=Decimal("100.005"),
        broker_ts_ns=1_700_000_001_000_000_001,
        local_ts_ns=7,
    )


def _update(kind: OrderEventKind) -> OrderUpdate:
    fill = (
        _fill("x-1", Decimal("0.3")) if kind in (OrderEventKind.PARTIAL_FILL, OrderEventKind.FILL) else None
    )
    return OrderUpdate(
        kind=kind, order=_order(), fill=fill, broker_ts_ns=1_700_000_001_000_000_001, local_ts_ns=1
    )


@pytest.mark.parametrize(
    ("order_type", "prices", "expected"),
    [
        ("stop", {"stop_price": "95.5"}, {"type": "stop", "stop_price": "95.5"}),
        (
            "stop_limit",
            {"stop_price": "95.5", "limit_price": "95.25"},
            {"type": "stop_limit", "stop_price": "95.5", "limit_price": "95.25"},
        ),
        ("limit", {"limit_price": "101.01"}, {"type": "limit", "limit_price": "101.01"}),
    ],
)
def test_order_bodies_carry_exact_stop_and_limit_prices(
    order_type: str, prices: dict[str, str], expected: dict[str, str]
) -> None:
    """Stop and stop-limit orders go out in Alpaca's shape with the prices as exact decimal strings."""
    from autoquant.brokers.alpaca_orders import order_body
    from autoquant.domain.broker import OrderRequest

    request = OrderRequest.model_validate(
        {"client_order_id": "aq-1", "symbol": "AAPL", "side": "sell", "qty": "3", "order_type": order_type}
        | prices
    )
    body = order_body(request)
    assert {key: body[key] for key in expected} == expected
    assert body["time_in_force"] == "day"


def test_a_day_order_for_crypto_goes_out_good_till_canceled() -> None:
    """Alpaca takes only gtc/ioc for crypto: the adapter, not the strategy, maps day to gtc."""
    from autoquant.brokers.alpaca_orders import order_body
    from autoquant.domain.broker import OrderRequest

    crypto = OrderRequest(client_order_id="aq-2", symbol="BTC/USD", side="buy", qty=Decimal("0.1"))
    stock = OrderRequest(client_order_id="aq-3", symbol="AAPL", side="buy", qty=Decimal(1))
    assert (order_body(crypto)["time_in_force"], order_body(stock)["time_in_force"]) == ("gtc", "day")


def test_order_bodies_carry_every_type_in_exact_decimals() -> None:
    """alpaca-py's request models shape each type; amounts go out as our exact strings: a trailing stop
    its trail, a notional order its amount and no qty, a crypto day order as gtc."""
    base = {"client_order_id": "c", "symbol": "AAPL", "side": Side.SELL}
    trailing = order_body(
        OrderRequest(
            **base, qty=Decimal("3"), order_type=OrderType.TRAILING_STOP, trail_percent=Decimal("1.25")
        )
    )
    assert (trailing["type"], trailing["trail_percent"], trailing["qty"]) == ("trailing_stop", "1.25", "3")
    assert "trail_price" not in trailing and "stop_price" not in trailing
    notional = order_body(OrderRequest(**base, notional=Decimal("100.10")))
    assert (notional["type"], notional["notional"], "qty" in notional) == ("market", "100.10", False)
    crypto = order_body(
        OrderRequest(
            client_order_id="b",
            symbol="BTC/USD",
            side=Side.BUY,
            qty=Decimal("0.001"),
            time_in_force=TimeInForce.DAY,
        )
    )
    assert (crypto["time_in_force"], crypto["qty"]) == ("gtc", "0.001")
    extended = order_body(
        OrderRequest(
            **base,
            qty=Decimal(1),
            order_type=OrderType.LIMIT,
            limit_price=Decimal("9.5"),
            extended_hours=True,
        )
    )
    assert extended["extended_hours"] is True
