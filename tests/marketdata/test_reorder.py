"""The reorder buffer: in order, no duplicates, late bars put back, holes reported as DataGap."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from autoquant.domain.bars import Bar
from autoquant.marketdata import DataGap, Released, ReorderBuffer
from tests.marketdata.helpers import bar_at

NOW = 1_800_000_000 * 1_000_000_000


def push_all(buffer: ReorderBuffer, indexes: list[int], symbol: str = "AAPL") -> list[Released]:
    out: list[Released] = []
    for i in indexes:
        out.extend(buffer.push(bar_at(i, symbol), NOW))
    return out


def closes(released: list[Released]) -> list[int]:
    return [r.close_ns for r in released if isinstance(r, Bar)]


def index(i: int) -> int:
    return bar_at(i).close_ns


def test_in_order_bars_are_released_at_once() -> None:
    """A regular series passes straight through, no waiting."""
    buffer = ReorderBuffer(window=4, interval_s=60)
    for i in range(5):
        assert closes(buffer.push(bar_at(i), NOW)) == [index(i)]


def test_duplicates_are_dropped_and_counted() -> None:
    """The same bar twice (released or still waiting) comes out once."""
    buffer = ReorderBuffer(window=4, interval_s=60)
    out = push_all(buffer, [0, 0, 2, 2, 1, 1])
    assert closes(out) == [index(0), index(1), index(2)]
    assert buffer.duplicates == 3


def test_late_bar_within_window_is_put_back_in_order() -> None:
    """Bars 0, 2, 3, 1 come out 0, 1, 2, 3 with no gap."""
    buffer = ReorderBuffer(window=4, interval_s=60)
    out = push_all(buffer, [0, 2, 3, 1])
    assert closes(out) == [index(i) for i in range(4)]
    assert not any(isinstance(r, DataGap) for r in out)


def test_hole_beyond_the_window_is_a_missing_gap() -> None:
    """Bar 1 never comes: after window + 1 bars wait, a DataGap is reported and the rest released."""
    buffer = ReorderBuffer(window=2, interval_s=60)
    assert closes(push_all(buffer, [0, 2, 3])) == [index(0)]
    out = buffer.push(bar_at(4), NOW)
    assert out[0] == DataGap(
        symbol="AAPL", kind="missing", after_ns=index(0), before_ns=index(2), missing_bars=1
    )
    assert closes(out) == [index(2), index(3), index(4)]


def test_bar_older_than_released_is_a_late_gap() -> None:
    """A bar arriving after later bars were released is dropped and reported as late."""
    buffer = ReorderBuffer(window=1, interval_s=60)
    push_all(buffer, [0, 2, 3])  # gives up on 1
    out = buffer.push(bar_at(1), NOW)
    assert out == [DataGap(symbol="AAPL", kind="late", after_ns=index(1), before_ns=index(3), missing_bars=0)]


def test_waiting_bars_are_released_when_the_clock_says_so() -> None:
    """A waiting bar is released after window x interval even if no more bars come."""
    buffer = ReorderBuffer(window=3, interval_s=60)
    push_all(buffer, [0, 2])
    assert buffer.waiting("AAPL") == 1
    assert buffer.poll(NOW + 179_000_000_000) == []
    out = buffer.poll(NOW + 180_000_000_000)
    assert isinstance(out[0], DataGap)
    assert closes(out) == [index(2)]


def test_symbols_are_independent() -> None:
    """A hole in one symbol does not hold back another symbol's bars."""
    buffer = ReorderBuffer(window=4, interval_s=60)
    push_all(buffer, [0, 2], "AAPL")
    assert closes(push_all(buffer, [0, 1], "MSFT")) == [
        bar_at(0, "MSFT").close_ns,
        bar_at(1, "MSFT").close_ns,
    ]


def test_bar_before_the_first_one_is_late() -> None:
    """The first bar anchors the sequence: an earlier bar arriving next is reported late."""
    buffer = ReorderBuffer(window=4, interval_s=60)
    out = push_all(buffer, [1, 0])
    assert closes(out) == [index(1)]
    assert isinstance(out[1], DataGap) and out[1].kind == "late"


def test_window_zero_never_holds_a_bar() -> None:
    """With window 0 a bar after a hole is released at once, with the gap reported first."""
    buffer = ReorderBuffer(window=0, interval_s=60)
    out = push_all(buffer, [0, 2])
    assert isinstance(out[1], DataGap)
    assert closes(out) == [index(0), index(2)]


@given(
    st.lists(st.tuples(st.sampled_from(["AAPL", "MSFT"]), st.integers(0, 30)), max_size=80), st.integers(0, 5)
)
def test_output_is_strictly_increasing_without_duplicates(
    arrivals: list[tuple[str, int]], window: int
) -> None:
    """Whatever arrives, each symbol's released bars strictly increase and none repeats."""
    buffer = ReorderBuffer(window=window, interval_s=60)
    out: list[Released] = []
    for symbol, i in arrivals:
        out.extend(buffer.push(bar_at(i, symbol), NOW))
    for symbol in ("AAPL", "MSFT"):
        times = [r.close_ns for r in out if isinstance(r, Bar) and r.symbol == symbol]
        assert times == sorted(set(times))


@given(st.data(), st.integers(1, 5), st.integers(1, 40))
def test_shuffles_within_the_window_lose_nothing(data: st.DataObject, window: int, n: int) -> None:
    """Bars shuffled within blocks of window + 1 (after the anchoring first bar) all come out in order."""
    order: list[int] = [0]
    for start in range(1, n, window + 1):
        block = list(range(start, min(start + window + 1, n)))
        order.extend(data.draw(st.permutations(block)))
    buffer = ReorderBuffer(window=window, interval_s=60)
    out = push_all(buffer, order)
    assert not any(isinstance(r, DataGap) for r in out)
    assert closes(out) == [index(i) for i in range(n)]
