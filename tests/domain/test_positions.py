"""The position fold over fills: exact quantities, average price and realized P&L."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from autoquant.domain.fills import Fill
from autoquant.domain.positions import Position, apply_fill, fold
from autoquant.domain.values import Side


def fill(side: Side, qty: str, price: str, n: int = 0, fee: str = "0") -> Fill:
    return Fill(
        execution_id=f"x{n}",
        client_order_id="aq-1",
        symbol="AAPL",
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        fee=Decimal(fee),
        local_ts_ns=n,
    )


def test_ten_fills_of_a_tenth_make_exactly_one() -> None:
    """Ten fills of 0.1 make a position of exactly 1, with no float anywhere."""
    position = fold("AAPL", (fill(Side.BUY, "0.1", "100", n) for n in range(10)))
    assert position.qty == Decimal("1")
    assert position.avg_price == Decimal("100")


def test_float_input_goes_through_its_shortest_repr() -> None:
    """A float on input becomes the decimal it prints as, so 0.1 is exactly 0.1."""
    item = Fill.model_validate(
        {
            "execution_id": "x",
            "client_order_id": "c",
            "symbol": "AAPL",
            "side": "buy",
            "qty": 0.1,
            "price": 100.1,
            "local_ts_ns": 1,
        }
    )
    assert item.qty == Decimal("0.1") and item.price == Decimal("100.1")


def test_average_price_and_realized_pnl() -> None:
    """Buys average their price; a sell realizes (price - average) on the quantity closed."""
    position = fold(
        "AAPL",
        [fill(Side.BUY, "10", "100", 1), fill(Side.BUY, "10", "110", 2), fill(Side.SELL, "5", "120", 3)],
    )
    assert position.qty == 15
    assert position.avg_price == 105
    assert position.realized_pnl == 75


def test_crossing_zero_opens_the_other_side_at_the_fill_price() -> None:
    """Selling through flat closes the long and opens a short at the fill price."""
    position = fold("AAPL", [fill(Side.BUY, "2", "100", 1), fill(Side.SELL, "5", "90", 2)])
    assert position.qty == -3
    assert position.avg_price == 90
    assert position.realized_pnl == -20


def test_fees_accumulate() -> None:
    """Fees are summed exactly across fills."""
    position = fold("AAPL", [fill(Side.BUY, "1", "10", 1, "0.01"), fill(Side.SELL, "1", "10", 2, "0.02")])
    assert position.fees == Decimal("0.03") and position.qty == 0 and position.avg_price == 0


quantities = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000"), places=2)
prices = st.decimals(min_value=Decimal("1"), max_value=Decimal("500"), places=2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(Side)), quantities, prices), min_size=1, max_size=30))
def test_quantity_is_the_exact_signed_sum(trades: list[tuple[Side, Decimal, Decimal]]) -> None:
    """The position quantity always equals the exact signed sum of the fills."""
    position = Position(symbol="AAPL")
    total = Decimal(0)
    for n, (side, qty, price) in enumerate(trades):
        position = apply_fill(position, fill(side, str(qty), str(price), n))
        total += qty if side is Side.BUY else -qty
        assert position.qty == total
        assert (position.avg_price == 0) == (position.qty == 0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(quantities, prices), min_size=1, max_size=10), prices)
def test_round_trip_realizes_the_whole_difference(
    buys: list[tuple[Decimal, Decimal]], exit_price: Decimal
) -> None:
    """Buying in pieces and selling everything realizes exactly sum(qty * (exit - entry))."""
    trades = [fill(Side.BUY, str(q), str(p), n) for n, (q, p) in enumerate(buys)]
    total = sum((q for q, _ in buys), Decimal(0))
    trades.append(fill(Side.SELL, str(total), str(exit_price), 99))
    position = fold("AAPL", trades)
    expected = sum((q * (exit_price - p) for q, p in buys), Decimal(0))
    assert position.qty == 0
    assert abs(position.realized_pnl - expected) < Decimal("1e-20")
