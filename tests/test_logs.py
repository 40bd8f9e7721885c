"""Structured logging: bound ids, the JSON line shape, rotation, and a writer that never blocks the loop."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from autoquant.logs import (
    DEFAULT_WORKER,
    LEADING_KEYS,
    LoggingHandle,
    bind_worker,
    bound,
    configure_logging,
    get_logger,
)
from autoquant.runtime.config import LoggingSettings

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class BlockingStream(io.StringIO):
    """A stderr that stalls every write until released, like a journald pipe that stopped reading."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait(timeout=30)
        return super().write(text)

    def isatty(self) -> bool:
        return False


class GatedStream(io.StringIO):
    """A stderr whose writes wait while its gate is closed; ``waiting`` is set once a write waits."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    def close_gate(self) -> None:
        self.waiting.clear()
        self.gate.clear()

    def write(self, text: str) -> int:
        if not self.gate.is_set():
            self.waiting.set()
            self.gate.wait(timeout=30)
        return super().write(text)

    def isatty(self) -> bool:
        return False


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.005)


async def async_wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.005)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def settings(tmp_path: Path) -> LoggingSettings:
    return LoggingSettings(path=tmp_path / "logs" / "autoquant.log", level="debug")


@pytest.fixture(params=["renderer process", "writer thread"])
def handle(settings: LoggingSettings, request: pytest.FixtureRequest) -> Iterator[LoggingHandle]:
    handle = configure_logging(
        settings, stderr=io.StringIO(), renderer_process=request.param == "renderer process"
    )
    try:
        yield handle
    finally:
        handle.close()


def test_bound_ids_and_worker_reach_every_event() -> None:
    """bind_worker and bound(...) put worker and the order's ids on each event, and unbind on exit."""
    log = get_logger("test")
    # The outer bound() only scopes bind_worker's binding to this test.
    with capture_logs(processors=[merge_contextvars]) as logs, bound(worker="x"):
        bind_worker("execution")
        with bound(decision_id="d-1", client_order_id="c-1", broker_order_id=None):
            log.info("order_submitted")
        log.info("idle")
    inside, outside = logs
    assert inside["worker"] == "execution"
    assert inside["decision_id"] == "d-1"
    assert inside["client_order_id"] == "c-1"
    assert "broker_order_id" not in inside
    assert "decision_id" not in outside
    assert structlog.contextvars.get_contextvars() == {}


async def test_tasks_keep_their_own_worker_binding() -> None:
    """A worker's binding made inside its task does not leak to sibling tasks or to the caller."""
    log = get_logger("test")

    async def worker(name: str, started: asyncio.Event, go: asyncio.Event) -> None:
        bind_worker(name)
        started.set()
        await go.wait()
        log.info("tick")

    events = [asyncio.Event(), asyncio.Event()]
    go = asyncio.Event()
    with capture_logs(processors=[merge_contextvars]) as logs:
        async with asyncio.TaskGroup() as group:
            group.create_task(worker("risk", events[0], go))
            group.create_task(worker("execution", events[1], go))
            for started in events:
                await started.wait()
            go.set()
        log.info("after")
    assert sorted(entry["worker"] for entry in logs[:2]) == ["execution", "risk"]
    assert "worker" not in logs[2]


def test_file_lines_are_json_with_the_agreed_shape(handle: LoggingHandle, settings: LoggingSettings) -> None:
    """A file line is a JSON object: µs UTC timestamp, level, event, worker, ids first; Decimal as str."""
    log = get_logger("test")
    log.info("daemon_started")
    bind_worker("execution")
    with bound(decision_id="d-1", client_order_id="c-1", broker_order_id="b-1"):
        log.info("order_submitted", qty=Decimal("0.10"), prices=[Decimal("101.25")])
    structlog.contextvars.clear_contextvars()
    handle.close()

    started, submitted = read_lines(settings.path)
    assert started["worker"] == DEFAULT_WORKER
    assert list(submitted)[: len(LEADING_KEYS)] == list(LEADING_KEYS)
    assert TIMESTAMP.match(submitted["timestamp"])
    assert submitted["level"] == "info"
    assert submitted["event"] == "order_submitted"
    assert (submitted["decision_id"], submitted["client_order_id"], submitted["broker_order_id"]) == (
        "d-1",
        "c-1",
        "b-1",
    )
    assert submitted["qty"] == "0.10"
    assert submitted["prices"] == ["101.25"]


def test_exceptions_render_a_traceback_field(handle: LoggingHandle, settings: LoggingSettings) -> None:
    """log.exception(...) writes level error and a traceback string naming the exception."""
    log = get_logger("test")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("worker_crashed")
    handle.close()

    (line,) = read_lines(settings.path)
    assert line["level"] == "error"
    assert line["traceback"].startswith("Traceback (most recent call last):")
    assert line["traceback"].endswith("ValueError: boom")


def test_stdlib_records_share_the_shape_and_the_bound_ids(
    handle: LoggingHandle, settings: LoggingSettings
) -> None:
    """A third-party stdlib log line gets timestamp, level, logger and the ids bound where it was logged."""
    with bound(worker="stream", client_order_id="c-9"):
        logging.getLogger("websockets.client").warning("connection %s closed", "wss://x")
    handle.close()

    (line,) = read_lines(settings.path)
    assert line["event"] == "connection wss://x closed"
    assert line["level"] == "warning"
    assert line["logger"] == "websockets.client"
    assert line["worker"] == "stream"
    assert line["client_order_id"] == "c-9"
    assert TIMESTAMP.match(line["timestamp"])


def test_level_filters_lines(tmp_path: Path) -> None:
    """Below the configured level nothing is written."""
    settings = LoggingSettings(path=tmp_path / "a.log", level="warning")
    with configure_logging(settings, stderr=io.StringIO()):
        log = get_logger("test")
        log.info("quiet")
        log.warning("loud")
    assert [line["event"] for line in read_lines(settings.path)] == ["loud"]


@pytest.mark.parametrize("renderer_process", [True, False])
def test_file_rotates_by_size(tmp_path: Path, renderer_process: bool) -> None:
    """Past max_bytes the file rolls to .1, .2 and keeps at most `backups` old files, all valid JSON."""
    settings = LoggingSettings(path=tmp_path / "a.log", max_bytes=2_000, backups=2)
    with configure_logging(settings, stderr=io.StringIO(), renderer_process=renderer_process):
        log = get_logger("test")
        for i in range(200):
            log.info("bar_received", i=i)
    rotated = sorted(path.name for path in tmp_path.iterdir())
    assert rotated == ["a.log", "a.log.1", "a.log.2"]
    newest = [line["i"] for line in read_lines(settings.path)]
    older = [line["i"] for line in read_lines(tmp_path / "a.log.1")]
    assert newest[-1] == 199
    assert older[-1] + 1 == newest[0]
    assert all(path.stat().st_size <= 2_000 for path in tmp_path.iterdir())


def test_stderr_is_json_without_a_tty_and_console_with_one(tmp_path: Path) -> None:
    """stderr carries JSON for journald, or a readable console line when it is a terminal."""
    plain, tty = io.StringIO(), io.StringIO()
    with configure_logging(LoggingSettings(path=tmp_path / "a.log"), stderr=plain, stderr_tty=False):
        get_logger("test").info("order_filled", qty=Decimal("1.5"))
    with configure_logging(LoggingSettings(path=tmp_path / "b.log"), stderr=tty, stderr_tty=True):
        get_logger("test").info("order_filled", qty=Decimal("1.5"))
    assert json.loads(plain.getvalue())["qty"] == "1.5"
    assert "order_filled" in tty.getvalue()
    assert "qty=1.5" in tty.getvalue()


async def test_slow_sink_does_not_block_the_loop(settings: LoggingSettings) -> None:
    """With the writer stuck in a sink's write, log calls return at once and the loop keeps ticking."""
    stream = BlockingStream()
    handle = configure_logging(settings, stderr=stream)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    try:
        async with asyncio.TaskGroup() as group:
            ticking = group.create_task(ticker())
            log = get_logger("test")
            log.info("first")
            await async_wait_until(stream.entered.is_set)
            started = time.monotonic()
            for i in range(100):
                log.info("while_blocked", i=i)
            assert time.monotonic() - started < 1.0
            seen = ticks
            await async_wait_until(lambda: ticks >= seen + 20)
            assert not stream.release.is_set()
            ticking.cancel()
    finally:
        stream.release.set()
        handle.close()
    events = [line["event"] for line in read_lines(settings.path)]
    assert events == ["first"] + ["while_blocked"] * 100


def test_a_full_queue_drops_and_reports_the_count(settings: LoggingSettings) -> None:
    """Behind a full queue, records are dropped, counted, and reported once the writer recovers."""
    stream = BlockingStream()
    handle = configure_logging(settings, stderr=stream, queue_size=5)
    try:
        log = get_logger("test")
        log.info("first")
        wait_until(stream.entered.is_set)
        for i in range(20):
            log.info("burst", i=i)
        assert handle.dropped == 15
    finally:
        stream.release.set()
        handle.close()
    lines = read_lines(settings.path)
    assert [line["event"] for line in lines] == ["first"] + ["log_records_dropped"] + ["burst"] * 5
    assert lines[1]["count"] == 15
    assert lines[1]["level"] == "warning"


def test_close_is_idempotent_and_restores_the_previous_setup(settings: LoggingSettings) -> None:
    """close() twice is harmless, removes the queue handler and lets logging be configured again."""
    before = structlog.get_config()["processors"]
    handlers = list(logging.getLogger().handlers)
    handle = configure_logging(settings, stderr=io.StringIO())
    with pytest.raises(RuntimeError, match="already configured"):
        configure_logging(settings, stderr=io.StringIO())
    handle.close()
    handle.close()
    assert structlog.get_config()["processors"] == before
    assert logging.getLogger().handlers == handlers
    configure_logging(settings, stderr=io.StringIO()).close()


def test_a_flooded_tiny_queue_accounts_for_every_record(settings: LoggingSettings) -> None:
    """A flooded 2-record queue drops records: written + dropped == logged, and the file reports them."""
    stream = GatedStream()
    handle = configure_logging(settings, stderr=stream, queue_size=2)
    log = get_logger("test")
    logged = 0
    try:
        stream.close_gate()
        log.info("flood", i=-1)
        logged += 1
        wait_until(stream.waiting.is_set)  # the writer is stuck, so the queue fills and stays full
        for i in range(500):
            log.info("flood", i=i)
            logged += 1
        stream.gate.set()
        for i in range(500, 5_000):  # and now against a running writer
            log.info("flood", i=i)
            logged += 1
    finally:
        stream.gate.set()
        handle.close()
    lines = read_lines(settings.path)
    written = [line for line in lines if line["event"] == "flood"]
    reports = [line for line in lines if line["event"] == "log_records_dropped"]
    assert handle.dropped >= 498
    assert len(written) + handle.dropped == logged
    assert sum(report["count"] for report in reports) == handle.dropped
    assert reports[-1]["total"] == handle.dropped
    assert {report["level"] for report in reports} == {"warning"}


def test_drop_reports_are_rate_limited_and_the_rest_is_reported_on_close(settings: LoggingSettings) -> None:
    """Within report_interval_s a second drop is not reported while running, but it is on close()."""
    stream = GatedStream()
    handle = configure_logging(settings, stderr=stream, queue_size=5, report_interval_s=3_600)
    log = get_logger("test")

    def stall_and_flood(first: str) -> None:
        stream.close_gate()
        log.info(first)
        wait_until(stream.waiting.is_set)
        for i in range(20):
            log.info("burst", i=i)
        stream.gate.set()

    def written() -> list[str]:
        return [line["event"] for line in read_lines(settings.path)]

    try:
        stall_and_flood("first")
        wait_until(lambda: written().count("burst") == 5)
        assert handle.dropped == 15
        stall_and_flood("second")
        wait_until(lambda: written().count("burst") == 10)
        assert handle.dropped == 30
        assert written().count("log_records_dropped") == 1
    finally:
        stream.gate.set()
        handle.close()
    reports = [line for line in read_lines(settings.path) if line["event"] == "log_records_dropped"]
    assert [(report["count"], report["total"]) for report in reports] == [(15, 15), (15, 30)]
    assert read_lines(settings.path)[-1]["event"] == "log_records_dropped"


def test_a_real_stderr_gets_the_file_lines_from_the_renderer_process(tmp_path: Path) -> None:
    """With stderr a file descriptor (journald), the renderer process writes it the same JSON lines."""
    settings = LoggingSettings(path=tmp_path / "a.log")
    with (
        open(tmp_path / "stderr", "w", encoding="utf-8") as stderr,
        configure_logging(settings, stderr=stderr, stderr_tty=False),
    ):
        with bound(worker="execution", client_order_id="c-1"):
            get_logger("test").info("order_filled", qty=Decimal("1.5"), lock=threading.Lock())
        logging.getLogger("asyncio").warning("slow callback")
    written = settings.path.read_text(encoding="utf-8")
    assert (tmp_path / "stderr").read_text(encoding="utf-8") == written
    filled, slow = read_lines(settings.path)
    assert (filled["qty"], filled["client_order_id"]) == ("1.5", "c-1")
    assert filled["lock"].startswith("<unlocked _thread.lock")  # does not pickle: sent as its repr
    assert (slow["event"], slow["logger"]) == ("slow callback", "asyncio")


def test_a_dead_renderer_process_is_replaced_by_the_writer_thread(settings: LoggingSettings) -> None:
    """If the renderer process dies, the writer says so in the file and renders the next lines itself."""
    children = Path(f"/proc/{os.getpid()}/task/{threading.get_native_id()}/children")
    before = set(children.read_text().split())
    handle = configure_logging(settings, stderr=io.StringIO())
    try:
        (renderer,) = set(children.read_text().split()) - before
        log = get_logger("test")
        log.info("before")
        wait_until(lambda: "before" in settings.path.read_text(encoding="utf-8"))
        os.kill(int(renderer), signal.SIGKILL)
        wait_until(lambda: renderer not in children.read_text().split() or _is_zombie(renderer))
        log.info("after")
    finally:
        handle.close()
    lines = read_lines(settings.path)
    assert [line["event"] for line in lines] == ["before", "log_renderer_exited", "after"]
    assert lines[1]["exit_code"] == -signal.SIGKILL


def _is_zombie(pid: str) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
