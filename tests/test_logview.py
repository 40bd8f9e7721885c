"""`autoquant logs`: rotated files in time order, filters, malformed lines, and follow across rotation."""

from __future__ import annotations

import argparse
import io
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from autoquant.logs import bind_worker, bound, configure_logging, get_logger
from autoquant.operator.logview import (
    Tally,
    add_logs_arguments,
    follow,
    human_line,
    lines_for_id,
    log_files,
    logs_command,
    parse_since,
)
from autoquant.runtime.config import LoggingSettings


def stamp(minutes_ago: float) -> str:
    # From the time the line is written, not when the module was imported: in a long suite a test
    # may run many minutes after collection, and --since 10m is measured from the real now.
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry(event: str, minutes_ago: float, level: str = "info", worker: str = "main", **fields: Any) -> str:
    record = {"timestamp": stamp(minutes_ago), "level": level, "event": event, "worker": worker, **fields}
    return json.dumps(record)


def write(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as stream:
        stream.writelines(line + "\n" for line in lines)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="autoquant logs")
    add_logs_arguments(parser)
    return parser.parse_args(argv)


def run(path: Path, *argv: str) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    code = logs_command(parse(*argv), LoggingSettings(path=path), out, err=err)
    return code, out.getvalue().splitlines(), err.getvalue()


def events(lines: list[str]) -> list[str]:
    return [json.loads(line)["event"] for line in lines]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """A log rotated twice: .2 holds the oldest lines, the current file the newest."""
    path = tmp_path / "autoquant.log"
    write(Path(f"{path}.2"), entry("daemon_started", 120))
    write(
        Path(f"{path}.1"),
        entry("decision_made", 90, worker="strategy", decision_id="d-1"),
        entry("order_reserved", 89, worker="execution", decision_id="d-1", client_order_id="sma-aapl-1"),
    )
    write(
        path,
        entry("order_submitted", 30, worker="execution", client_order_id="sma-aapl-1", broker_order_id="b-7"),
        entry("fill_recorded", 5, worker="stream", broker_order_id="b-7", qty="10"),
        entry(
            "reconcile_mismatch", 2, level="warning", worker="reconcile", detail="order sma-aapl-1 missing"
        ),
        entry("worker_crashed", 1, level="error", worker="stream", traceback="Traceback...\nValueError: x"),
    )
    return path


def test_rotated_files_are_listed_oldest_first(tmp_path: Path) -> None:
    """.10 before .2 before .1 before the current file; unrelated names are ignored."""
    path = tmp_path / "a.log"
    for name in ("a.log", "a.log.1", "a.log.2", "a.log.10", "a.log.bak", "b.log.1"):
        (tmp_path / name).write_text("")
    assert [file.name for file in log_files(path)] == ["a.log.10", "a.log.2", "a.log.1", "a.log"]


def test_json_output_is_every_line_unchanged_in_time_order(log: Path) -> None:
    """--json prints the raw lines of .2, .1 and the current file, oldest first, byte for byte."""
    code, lines, err = run(log, "--json")
    assert code == 0
    assert err == ""
    expected = [
        *Path(f"{log}.2").read_text().splitlines(),
        *Path(f"{log}.1").read_text().splitlines(),
        *log.read_text().splitlines(),
    ]
    assert lines == expected


def test_level_filter_keeps_that_level_and_above(log: Path) -> None:
    """--level warning shows warnings and errors only."""
    _, lines, _ = run(log, "--json", "--level", "warning")
    assert events(lines) == ["reconcile_mismatch", "worker_crashed"]


def test_since_accepts_durations_and_iso_times(log: Path) -> None:
    """--since 10m and --since <ISO time> both cut off older lines."""
    _, recent, _ = run(log, "--json", "--since", "10m")
    assert events(recent) == ["fill_recorded", "reconcile_mismatch", "worker_crashed"]
    _, iso, _ = run(log, "--json", "--since", stamp(89.5))
    assert events(iso)[0] == "order_reserved"
    assert len(iso) == 5


def test_bad_since_is_a_usage_error(log: Path) -> None:
    """An unparseable or zone-less --since exits 2 with a message saying what to write."""
    code, _, err = run(log, "--since", "yesterday")
    assert code == 2
    assert "10m" in err
    code, _, err = run(log, "--since", "2024-05-01T14:00")
    assert code == 2
    assert "time zone" in err


def test_id_filter_finds_every_line_that_bears_the_id(log: Path) -> None:
    """--id matches the three id fields exactly and any other field that mentions the id."""
    _, lines, _ = run(log, "--json", "--id", "sma-aapl-1")
    assert events(lines) == ["order_reserved", "order_submitted", "reconcile_mismatch"]
    _, by_broker_id, _ = run(log, "--json", "--id", "b-7")
    assert events(by_broker_id) == ["order_submitted", "fill_recorded"]


def test_worker_filter(log: Path) -> None:
    """--worker keeps that worker's lines only, and combines with other filters."""
    _, lines, _ = run(log, "--json", "--worker", "stream")
    assert events(lines) == ["fill_recorded", "worker_crashed"]
    _, errors, _ = run(log, "--json", "--worker", "stream", "--level", "error")
    assert events(errors) == ["worker_crashed"]


def test_lines_for_id_returns_records_for_trace(log: Path) -> None:
    """lines_for_id gives the parsed records bearing an id, oldest first."""
    records = lines_for_id(log, "d-1")
    assert [record["event"] for record in records] == ["decision_made", "order_reserved"]
    assert records[1]["client_order_id"] == "sma-aapl-1"


def test_human_lines_are_compact_and_show_tracebacks(log: Path) -> None:
    """Without --json a line reads time, LEVEL, worker, event, then ids and fields; tracebacks indented."""
    _, lines, _ = run(log, "--worker", "stream")
    assert lines[0].split()[1:4] == ["INFO", "stream", "fill_recorded"]
    assert "broker_order_id=b-7 qty=10" in lines[0]
    assert lines[-2:] == ["    Traceback...", "    ValueError: x"]


def test_human_line_quotes_values_with_spaces() -> None:
    """A field value with spaces is JSON-quoted so the line stays parseable by eye."""
    line = human_line({"timestamp": "t", "level": "info", "event": "e", "worker": "w", "detail": "a b"})
    assert line.endswith('detail="a b"')


def test_malformed_lines_are_skipped_and_counted(log: Path) -> None:
    """Garbage lines do not stop the reader; their count is reported on stderr."""
    write(log, "not json", "[1, 2]", entry("after_garbage", 0))
    code, lines, err = run(log, "--json")
    assert code == 0
    assert events(lines)[-1] == "after_garbage"
    assert "skipped 2 malformed" in err


def test_missing_log_file_exits_1(tmp_path: Path) -> None:
    """With no log at the configured path the command says where it looked and exits 1."""
    code, _, err = run(tmp_path / "none.log")
    assert code == 1
    assert str(tmp_path / "none.log") in err


def test_parse_since_relative_units() -> None:
    """30s, 10m, 2h and 1d count back from now."""
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_since("30s", now) == now - timedelta(seconds=30)
    assert parse_since("10m", now) == now - timedelta(minutes=10)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("1d", now) == now - timedelta(days=1)


def stop_after(seconds: float) -> Callable[[], bool]:
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() > deadline


def test_follow_yields_appended_lines_and_waits_for_the_newline(tmp_path: Path) -> None:
    """follow() starts at the end, yields each new complete line, and holds a half-written one back."""
    path = tmp_path / "a.log"
    write(path, entry("old", 3))
    half = entry("second", 0)
    deadline = stop_after(10)
    rest_written = threading.Event()

    def stop() -> bool:
        # Called only at end of file: by then follow() has read the half line; now finish it.
        if half[:10] in path.read_text() and not rest_written.is_set():
            write_raw(path, half[10:] + "\n")
            rest_written.set()
        return deadline()

    tally = Tally()
    lines = follow(path, stop=stop, tally=tally, poll_s=0.01)
    write(path, entry("first", 0))
    assert next(lines).record["event"] == "first"
    write_raw(path, half[:10])
    assert next(lines).record["event"] == "second"
    assert rest_written.is_set()
    assert tally.malformed == 0
    lines.close()


def write_raw(path: Path, text: str) -> None:
    with path.open("a") as stream:
        stream.write(text)


def test_follow_survives_rotation(tmp_path: Path) -> None:
    """Lines written just before a rename and those in the new file both come out, in order."""
    path = tmp_path / "a.log"
    write(path, entry("before", 1))
    lines = follow(path, stop=stop_after(10), tally=Tally(), poll_s=0.01)
    write(path, entry("one", 0))
    assert next(lines).record["event"] == "one"
    write(path, entry("last_in_old_file", 0))
    os.rename(path, f"{path}.1")
    write(path, entry("first_in_new_file", 0))
    assert next(lines).record["event"] == "last_in_old_file"
    assert next(lines).record["event"] == "first_in_new_file"
    lines.close()


def test_follow_ends_when_stop_says_so(tmp_path: Path) -> None:
    """With nothing new, follow() returns once stop() turns True."""
    path = tmp_path / "a.log"
    write(path, entry("only", 0))
    assert list(follow(path, stop=stop_after(0.1), tally=Tally(), poll_s=0.01)) == []


def test_follow_with_the_real_rotating_writer(tmp_path: Path) -> None:
    """Following the file configure_logging rotates sees every line exactly once, in order."""
    settings = LoggingSettings(path=tmp_path / "a.log", max_bytes=1_500, backups=3)
    seen: list[int] = []
    finished = threading.Event()

    def reader() -> None:
        stop = stop_after(20)
        for line in follow(
            settings.path, stop=lambda: finished.is_set() or stop(), tally=Tally(), poll_s=0.005
        ):
            seen.append(line.record["i"])

    with configure_logging(settings, stderr=io.StringIO()):
        thread = threading.Thread(target=reader)
        thread.start()
        try:
            log = get_logger("test")
            bind_worker("bars")
            for i in range(60):
                with bound(decision_id=f"d-{i}"):
                    log.info("bar_received", i=i)
                deadline = time.monotonic() + 5
                while i not in seen:  # one line per poll, so no file is rotated twice unseen
                    assert time.monotonic() < deadline
                    time.sleep(0.002)
        finally:
            finished.set()
            thread.join()
    assert seen == list(range(60))
    assert Path(f"{settings.path}.1").exists()


def test_logs_command_follow_prints_history_then_new_lines(tmp_path: Path) -> None:
    """--follow prints the matching history, then matching new lines, until the stop condition."""
    path = tmp_path / "a.log"
    write(path, entry("history", 1, worker="stream"), entry("other", 1, worker="risk"))
    out = io.StringIO()
    appended = threading.Event()

    def stop() -> bool:
        if not appended.is_set():
            write(path, entry("live", 0, worker="stream"), entry("hidden", 0, worker="risk"))
            appended.set()
            return False
        return "live" in out.getvalue()

    code = logs_command(
        parse("--follow", "--json", "--worker", "stream"),
        LoggingSettings(path=path),
        out,
        stop=stop,
        poll_s=0.01,
    )
    assert code == 0
    assert events(out.getvalue().splitlines()) == ["history", "live"]
