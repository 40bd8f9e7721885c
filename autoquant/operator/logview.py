"""``autoquant logs``: read the JSON log and its rotated siblings, filter, print, and follow.

The file is the one ``autoquant.logs`` writes: one JSON object a line, rotated by size to ``.1``
(newest old file) … ``.N`` (oldest). Reading goes oldest first, so lines come out in time order.
A line that is not a JSON object (a torn write, a hand edit) is skipped and counted, never fatal.

``--follow`` keeps reading the current file as it grows and notices rotation (the path names a new
file, or the file shrank): it finishes the old file from the open descriptor, then opens the new
one from the start. A file rotated twice within one poll interval loses the middle file's lines
from the follow output (not from disk). ``follow`` is a generator with a stop condition so tests
(and the CLI's Ctrl-C) can end it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Final, TextIO

from autoquant.logs import ID_KEYS, LEADING_KEYS
from autoquant.runtime.config import LoggingSettings

LEVELS: Final = ("debug", "info", "warning", "error", "critical")
_RANK: Final = {name: rank for rank, name in enumerate(LEVELS)}
_RELATIVE: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_POLL_S: Final = 0.2


# --- reading -------------------------------------------------------------------------------------


def log_files(path: Path) -> list[Path]:
    """The rotated siblings oldest first (``.N`` … ``.1``), then the current file, those that exist."""
    siblings: list[tuple[int, Path]] = []
    if path.parent.is_dir():
        for candidate in path.parent.iterdir():
            suffix = candidate.name.removeprefix(path.name + ".")
            if candidate.name != suffix and suffix.isdigit():
                siblings.append((int(suffix), candidate))
    ordered = [candidate for _, candidate in sorted(siblings, reverse=True)]
    return [*ordered, path] if path.exists() else ordered


@dataclass
class Tally:
    """What reading skipped, reported once at the end."""

    malformed: int = 0


@dataclass(frozen=True)
class Line:
    raw: str
    record: dict[str, Any]


def parse_line(raw: str, tally: Tally) -> Line | None:
    text = raw.rstrip("\n")
    if not text.strip():
        return None
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        tally.malformed += 1
        return None
    return Line(text, record)


def read_lines(path: Path, tally: Tally) -> Iterator[Line]:
    """Every parseable line of the log and its rotated siblings, oldest first."""
    return _read_files(log_files(path), tally)


def _read_files(files: Iterable[Path], tally: Tally) -> Iterator[Line]:
    for file in files:
        try:
            with file.open(encoding="utf-8", errors="replace") as stream:
                for raw in stream:
                    line = parse_line(raw, tally)
                    if line is not None:
                        yield line
        except FileNotFoundError:
            continue  # rotated away between listing and opening


def follow(
    path: Path,
    *,
    stop: Callable[[], bool],
    tally: Tally,
    poll_s: float = DEFAULT_POLL_S,
    from_start: bool = False,
) -> Generator[Line, None, None]:
    """New lines of ``path`` as they are written, across rotations, until ``stop()`` is True.

    From the end of the current file as it is at this call (not at the first ``next``) unless
    ``from_start``. A line is yielded only once its newline is written, so a write caught half-way
    is not mistaken for a malformed line.
    """
    start = 0
    if not from_start:
        with contextlib.suppress(FileNotFoundError):
            start = path.stat().st_size
    return _follow(path, stop, tally, poll_s, start)


def _follow(
    path: Path, stop: Callable[[], bool], tally: Tally, poll_s: float, start: int
) -> Generator[Line, None, None]:
    stream = _open_when_present(path, stop, poll_s)
    if stream is None:
        return
    partial = b""
    try:
        stream.seek(start)
        while True:
            chunk = stream.readline()
            if chunk:
                partial += chunk
                if partial.endswith(b"\n"):
                    line, partial = _decode(partial, tally), b""
                    if line is not None:
                        yield line
                continue
            if stop():
                # An unfinished last line: a torn write if the writer is gone, counted if unparseable.
                line = _decode(partial, tally) if partial else None
                if line is not None:
                    yield line
                return
            if _rotated(path, stream):
                # Lines written just before the rename are still in the old file: finish them first.
                for raw in stream.readlines():
                    line, partial = _decode(partial + raw, tally), b""
                    if line is not None:
                        yield line
                stream.close()
                reopened = _open_when_present(path, stop, poll_s)
                if reopened is None:
                    return
                stream, partial = reopened, b""
                continue
            time.sleep(poll_s)
    finally:
        stream.close()


def _decode(raw: bytes, tally: Tally) -> Line | None:
    return parse_line(raw.decode("utf-8", errors="replace"), tally)


def _open_when_present(path: Path, stop: Callable[[], bool], poll_s: float) -> BinaryIO | None:
    while True:
        try:
            return path.open("rb")
        except FileNotFoundError:
            if stop():
                return None
            time.sleep(poll_s)


def _rotated(path: Path, stream: BinaryIO) -> bool:
    """The path names another file now (renamed away), or the file shrank (truncated)."""
    try:
        current = path.stat()
    except FileNotFoundError:
        return True
    opened = os.fstat(stream.fileno())
    moved = (current.st_ino, current.st_dev) != (opened.st_ino, opened.st_dev)
    return moved or current.st_size < stream.tell()


# --- filtering -----------------------------------------------------------------------------------


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``10m``, ``2h``, ``30s``, ``1d`` ago, or an ISO time with a zone (``2024-05-01T14:00Z``)."""
    match = _RELATIVE.match(text.strip())
    if match:
        moment = now or datetime.now(UTC)
        try:
            return moment - timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
        except (OverflowError, ValueError):
            raise ValueError(
                f"--since {text!r} reaches back before the year 1: give a shorter duration or an ISO time"
            ) from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r} is neither a duration (10m, 2h, 1d) nor an ISO time (2024-05-01T14:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"--since {text!r} has no time zone: add Z for UTC (e.g. {text}Z)")
    return moment


def _timestamp(record: dict[str, Any]) -> datetime | None:
    value = record.get("timestamp")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _contains(value: object, needle: str) -> bool:
    if isinstance(value, str):
        return needle in value
    if isinstance(value, dict):
        return any(_contains(item, needle) for item in value.values())
    if isinstance(value, list):
        return any(_contains(item, needle) for item in value)
    return False


def bears_id(record: dict[str, Any], needle: str) -> bool:
    """The line names ``needle``: as one of its ids exactly, or inside any other field's text."""
    if any(record.get(key) == needle for key in ID_KEYS):
        return True
    return any(
        _contains(value, needle)
        for key, value in record.items()
        if key not in ID_KEYS and key not in ("timestamp", "level")
    )


@dataclass(frozen=True)
class Filter:
    min_level: str | None = None
    since: datetime | None = None
    id: str | None = None
    worker: str | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        if self.min_level is not None:
            rank = _RANK.get(str(record.get("level", "info")).lower(), _RANK["info"])
            if rank < _RANK[self.min_level]:
                return False
        if self.since is not None:
            moment = _timestamp(record)
            if moment is None or moment < self.since:
                return False
        if self.worker is not None and record.get("worker") != self.worker:
            return False
        return self.id is None or bears_id(record, self.id)


def lines_for_id(path: Path, id: str) -> list[dict[str, Any]]:
    """Every log line (rotated files included) that bears ``id``, oldest first; for ``trace``."""
    return [line.record for line in read_lines(path, Tally()) if bears_id(line.record, id)]


# --- output --------------------------------------------------------------------------------------


def _value(value: object) -> str:
    if isinstance(value, str) and value and not any(ch.isspace() or ch in "\"'=" for ch in value):
        return value
    return json.dumps(value, ensure_ascii=False)


def human_line(record: dict[str, Any]) -> str:
    """``2024-05-01T14:00:00.123456Z INFO    execution  order_submitted client_order_id=… qty=10``."""
    level = str(record.get("level", "?")).upper()
    worker = str(record.get("worker", "-"))
    head = f"{record.get('timestamp', '?')} {level:<7} {worker:<12} {record.get('event', '?')}"
    skip = {"timestamp", "level", "worker", "event", "traceback"}
    keys: list[str] = [key for key in LEADING_KEYS if key in record and key not in skip]
    keys += [key for key in record if key not in skip and key not in LEADING_KEYS]
    fields = " ".join(f"{key}={_value(record[key])}" for key in keys)
    text = f"{head} {fields}" if fields else head
    if isinstance(record.get("traceback"), str):
        text += "\n" + "\n".join("    " + row for row in record["traceback"].splitlines())
    return text


@dataclass
class Printer:
    out: TextIO
    as_json: bool
    printed: int = field(default=0)

    def print(self, lines: Iterable[Line], keep: Filter) -> None:
        for line in lines:
            if keep.matches(line.record):
                self.out.write((line.raw if self.as_json else human_line(line.record)) + "\n")
                self.out.flush()
                self.printed += 1


# --- the command ---------------------------------------------------------------------------------


def add_logs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    parser.add_argument("--level", choices=LEVELS, help="minimum level to show")
    parser.add_argument("--since", metavar="T", help="only lines at or after T: 10m, 2h, 1d, or ISO time")
    parser.add_argument(
        "--id",
        metavar="ID",
        help="only lines that bear ID (decision, client order or broker order id, or in any field)",
    )
    parser.add_argument("--worker", metavar="W", help="only lines of worker W")
    parser.add_argument("--json", action="store_true", help="print the JSON lines unchanged")


def logs_command(
    args: argparse.Namespace,
    settings: LoggingSettings,
    out: TextIO,
    *,
    err: TextIO | None = None,
    stop: Callable[[], bool] | None = None,
    poll_s: float = DEFAULT_POLL_S,
) -> int:
    """Print the matching lines (then follow with ``--follow``); 0 done, 1 no log, 2 bad arguments."""
    errors = sys.stderr if err is None else err
    try:
        since = parse_since(args.since) if getattr(args, "since", None) else None
    except ValueError as error:
        errors.write(f"autoquant logs: {error}\n")
        return 2
    keep = Filter(
        min_level=getattr(args, "level", None),
        since=since,
        id=getattr(args, "id", None),
        worker=getattr(args, "worker", None),
    )
    following = bool(getattr(args, "follow", False))
    path = settings.path
    if not following and not log_files(path):
        errors.write(f"autoquant logs: no log file at {path} (set [logging] path in the config)\n")
        return 1
    tally = Tally()
    printer = Printer(out, as_json=bool(getattr(args, "json", False)))
    try:
        # History from the rotated files, then the current file from its start: follow() reads it
        # to the end and keeps going, so no line falls between reading and following.
        rotated = [file for file in log_files(path) if file != path]
        printer.print(_read_files(rotated, tally), keep)
        should_stop = (stop or (lambda: False)) if following else (lambda: True)
        printer.print(follow(path, stop=should_stop, tally=tally, poll_s=poll_s, from_start=True), keep)
    except KeyboardInterrupt:
        pass
    if tally.malformed:
        errors.write(f"autoquant logs: skipped {tally.malformed} malformed line(s)\n")
    return 0
