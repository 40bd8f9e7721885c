"""One CSV bar reader for the csv source and the backtest: the same bars, the same one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoquant.marketdata import MalformedBarFile
from autoquant.marketdata.csv_reader import read_bars
from autoquant.marketdata.replay import load_file
from autoquant.research.bars import check_bars, stream_bars

HEADER = "timestamp,open,high,low,close,volume\n"
GOOD = "1704205800,100,101,99,100.5,10\n1704205860,100.5,102,100,101,12\n"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (
            "1704205860,100,101,99,100,1",
            "AAPL timestamp 2024-01-02T14:31:00+00:00 duplicates the previous row's",
        ),
        ("1704205740,100,101,99,100,1", "is before the previous row's: bars must be sorted by time"),
        ("1704205920,NaN,101,99,100,1", "open"),
        ("1704205920,100,101,99,nan,1", "close"),
    ],
)
def test_both_readers_refuse_a_bad_row_with_the_same_line(tmp_path: Path, row: str, problem: str) -> None:
    """An unsorted, duplicated or NaN row is refused by the csv source and by the backtest alike, in
    one line naming the file and the line."""
    path = tmp_path / "AAPL.csv"
    path.write_text(HEADER + GOOD + row + "\n")
    messages = []
    for read in (lambda: load_file(path, 60), lambda: check_bars(path, 60)):
        with pytest.raises(MalformedBarFile) as caught:
            read()
        assert (caught.value.path, caught.value.line) == (path, 4)
        assert problem in str(caught.value) and "\n" not in str(caught.value)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


def test_the_backtest_streams_the_bars_the_source_loads(tmp_path: Path) -> None:
    """The backtest's streamed (unvalidated, already checked) bars equal the source's validated ones."""
    path = tmp_path / "AAPL.csv"
    path.write_text(HEADER + GOOD)
    summary = check_bars(path, 60)
    streamed = [bar.model_dump(exclude={"source"}) for bar in stream_bars(summary.files, 60)]
    loaded = [bar.model_dump(exclude={"source"}) for bar in load_file(path, 60)]
    assert streamed == loaded and len(loaded) == 2
    assert [bar.source for bar in read_bars(path, 60, source="x")] == ["x", "x"]
