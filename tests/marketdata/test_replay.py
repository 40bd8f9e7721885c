"""CSV replay: format, typed errors naming file and line, nothing emitted from a bad file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.clocks import FakeClock
from autoquant.domain.bars import Bar
from autoquant.domain.values import to_ns
from autoquant.marketdata import CsvBars, MalformedBarFile
from tests.marketdata.helpers import T0, clock_sleep

GOOD = """timestamp,symbol,open,high,low,close,volume
2024-01-02T15:00:00Z,AAPL,100.00,101.50,99.75,101.00,1200
1704207600,MSFT,300,301,299,300.5,10
2024-01-02T15:01:00+00:00,AAPL,101.00,101.20,100.10,100.50,900
"""


def write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def replay(path: Path, symbols: list[str]) -> list[Bar]:
    clock = FakeClock()
    source = CsvBars(path, bar_seconds=60, clock=clock, sleep=clock_sleep(clock), symbols=symbols)
    return [bar async for bar in source]


async def test_replays_rows_in_time_order_with_exact_prices(tmp_path: Path) -> None:
    """ISO and epoch timestamps, a symbol column; bars open at the timestamp and last bar_seconds."""
    bars = await CsvBars(write(tmp_path, GOOD), bar_seconds=60, clock=FakeClock()).load()
    assert [(b.symbol, b.close) for b in bars] == [
        ("AAPL", Decimal("101.00")),
        ("MSFT", Decimal("300.5")),
        ("AAPL", Decimal("100.50")),
    ]
    assert bars[0].open_time == T0
    assert to_ns(bars[0].close_time) - to_ns(bars[0].open_time) == 60_000_000_000
    assert bars[1].open_time == T0  # 1704207600 is 2024-01-02T15:00:00Z
    assert {b.source for b in bars} == {"csv"}


async def test_file_without_symbol_column_is_named_by_its_stem(tmp_path: Path) -> None:
    """BTC_USD.csv without a symbol column holds BTC/USD bars."""
    text = "timestamp,open,high,low,close,volume\n2024-01-02T15:00:00Z,42000,42100,41900,42050,0.5\n"
    bars = await CsvBars(write(tmp_path, text, "BTC_USD.csv"), bar_seconds=60, clock=FakeClock()).load()
    assert [b.symbol for b in bars] == ["BTC/USD"]


async def test_directory_of_files_is_merged_in_time_order(tmp_path: Path) -> None:
    """A directory replays every *.csv in it, interleaved by time."""
    header = "timestamp,open,high,low,close,volume\n"
    write(tmp_path, header + "1704207600,1,1,1,1,1\n1704207720,1,1,1,1,1\n", "AAPL.csv")
    write(tmp_path, header + "1704207660,2,2,2,2,1\n", "MSFT.csv")
    bars = await CsvBars(tmp_path, bar_seconds=60, clock=FakeClock()).load()
    assert [b.symbol for b in bars] == ["AAPL", "MSFT", "AAPL"]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("2024-01-02T15:02:00Z,AAPL,100,99,101,100,1", "high"),
        ("2024-01-02T15:02:00Z,AAPL,abc,101,99,100,1", "not a decimal"),
        ("2024-01-02T15:02:00,AAPL,100,101,99,100,1", "no timezone"),
        ("yesterday,AAPL,100,101,99,100,1", "neither ISO-8601 nor epoch"),
        ("2024-01-02T15:02:00Z,AAPL,100,101,99,100", "6 fields"),
        ("2024-01-02T15:00:30Z,AAPL,100,101,99,100,1", "is before the previous row"),
        ("2024-01-02T15:02:00Z,aapl,100,101,99,100,1", "symbol"),
        ("2024-01-02T15:02:00Z,AAPL,100,101,99,100,-1", "volume"),
    ],
)
async def test_malformed_row_names_file_and_line_and_emits_nothing(
    tmp_path: Path, row: str, problem: str
) -> None:
    """A bad fifth line raises MalformedBarFile at line 5 before any bar of the file is emitted."""
    path = write(tmp_path, GOOD + row + "\n")
    clock = FakeClock()
    source = CsvBars(path, bar_seconds=60, clock=clock, sleep=clock_sleep(clock))
    iterator = aiter(source)
    with pytest.raises(MalformedBarFile) as caught:
        await anext(iterator)  # the very first bar: the good rows before the bad one never come out
    assert caught.value.path == path
    assert caught.value.line == 5
    assert str(caught.value).startswith(f"{path}:5: ")
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty file: a header row is required"),
        ("time,open,high,low,close,volume\n", "header lacks timestamp"),
    ],
)
async def test_bad_header_is_line_one(tmp_path: Path, text: str, problem: str) -> None:
    """A missing or incomplete header is reported at line 1."""
    with pytest.raises(MalformedBarFile, match=f":1: {problem}"):
        await CsvBars(write(tmp_path, text), bar_seconds=60, clock=FakeClock()).load()


async def test_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    """A path that does not exist raises MalformedBarFile naming it."""
    with pytest.raises(MalformedBarFile, match="cannot read"):
        await CsvBars(tmp_path / "nope.csv", bar_seconds=60, clock=FakeClock()).load()


async def test_paced_restamped_replay_follows_the_clock(tmp_path: Path) -> None:
    """With a pace and restamp, each timestamp group waits pace_s and closes at the clock's time."""
    clock = FakeClock()
    start = clock.now_ns()
    source = CsvBars(
        write(tmp_path, GOOD), bar_seconds=60, clock=clock, sleep=clock_sleep(clock), pace_s=2.0, restamp=True
    )
    bars = [bar async for bar in source]
    assert [b.close_ns - start for b in bars] == [0, 0, 2_000_000_000]
    assert all(to_ns(b.close_time) - to_ns(b.open_time) == 60_000_000_000 for b in bars)


async def test_symbols_filter_keeps_only_configured_symbols(tmp_path: Path) -> None:
    """Rows for symbols that are not configured are not emitted."""
    bars = await replay(write(tmp_path, GOOD), symbols=["MSFT"])
    assert len(bars) == 1
