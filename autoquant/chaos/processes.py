"""The daemon and paper-server as real processes, for crash tests and ``make chaos``.

Both write their output to files, never to a pipe nobody reads: a long run would fill the pipe and
block the process on a write, which looks exactly like the hang these runs are looking for.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from autoquant.errors import LedgerError
from autoquant.ledger import LedgerReader
from autoquant.runtime.config import Secrets

T = TypeVar("T")

#: The keys both processes are started with (paper-server accepts whatever pair it was given).
CHAOS_KEYS = Secrets(key_id="chaos-key", secret_key="chaos-secret")
LISTENING = "paper-server listening on"  # the line paper-server prints once it accepts connections

#: Fast bars and short SMA windows, so a fresh daemon trades within a couple of seconds.
DAEMON_CONFIG = """\
[ledger]
path = "{root}/ledger.db"
[broker]
kind = "{kind}"
{broker_extra}
[paper]
state_path = "{root}/paper.db"
latency_s = 0.02
[marketdata]
symbols = ["AAPL", "MSFT"]
bar_seconds = {bar_seconds}
{marketdata_extra}
[[strategies]]
id = "sma-aapl"
kind = "sma_cross"
symbol = "AAPL"
fast = 2
slow = 4
qty = "3"
{msft_strategy}[risk]
max_orders_per_minute = 600
[reconcile]
interval_s = 2.0
resubmit_grace_s = 0.5
[logging]
path = "{root}/autoquant.log"
level = "info"
"""


SMA_MSFT = """\
[[strategies]]
id = "sma-msft"
kind = "sma_cross"
symbol = "MSFT"
fast = 2
slow = 5
qty = "2"
"""

#: The crash and chaos suites' MSFT strategy: market, limit, stop and stop-limit orders in turn.
MIXED_MSFT = """\
[[strategies]]
id = "mixed-msft"
kind = "autoquant.chaos.mixed_orders:MixedOrders"
symbol = "MSFT"
qty = "2"
"""


def daemon_config(
    root: Path, *, url: str | None = None, bar_seconds: float = 0.1, mixed_orders: bool = False
) -> str:
    """The daemon's config: against paper-server at ``url``, else the embedded paper exchange. With
    ``mixed_orders`` MSFT is traded by ``MixedOrders`` (every order type) instead of an SMA cross."""
    strategy = MIXED_MSFT if mixed_orders else SMA_MSFT
    kind, extra = ("paper", "") if url is None else ("alpaca", f'url = "{url}"\ntimeout_s = 3.0')
    # Limit and stop prices mean something only against the exchange's own prices: with mixed orders the
    # daemon trades on paper-server's market-data stream rather than on synthetic bars of its own.
    market = ""
    if mixed_orders and url is not None:
        market = f'source = "alpaca"\nurl = "{url.replace("http://", "ws://", 1)}"'
    return DAEMON_CONFIG.format(
        root=root,
        kind=kind,
        broker_extra=extra,
        bar_seconds=bar_seconds,
        msft_strategy=strategy,
        marketdata_extra=market,
    )


SERVER_CONFIG = """\
[paper]
state_path = "{root}/paper.db"
latency_s = 0.02
partial_fill_probability = {partial}
[paper.faults]
{faults}
[marketdata]
symbols = ["AAPL", "MSFT"]
bar_seconds = {bar_seconds}
"""

#: The faults ``make chaos`` runs the exchange with.
CHAOS_FAULTS: dict[str, float] = {
    "drop_response_after_accept": 0.05,
    "error_5xx": 0.05,
    "rate_limit_429": 0.05,
    "duplicate_stream_event": 0.1,
    "reorder_stream_events": 0.1,
    "stream_disconnect_every_s": 3.0,
}


def wait_for(condition: Callable[[], T | None], timeout_s: float, what: str, poll_s: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy; raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(poll_s)


def read_ledger(db: Path, read: Callable[[LedgerReader], Awaitable[T]]) -> T | None:
    """One named read of the ledger opened read-only (from synchronous code, no loop running);
    None while it does not exist or is not migrated yet."""

    async def go() -> T:
        async with await LedgerReader.open(db) as ledger:
            return await read(ledger)

    if not db.exists():
        return None
    try:
        return asyncio.run(go())
    except LedgerError:
        return None


def key_env(keys: Secrets) -> dict[str, str]:
    return {"APCA_API_KEY_ID": keys.key_id, "APCA_API_SECRET_KEY": keys.secret_key}


def _stop(process: subprocess.Popen[bytes], timeout_s: float) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


@dataclass
class ServerProcess:
    """``python -m autoquant.runtime.paper_server`` in ``root`` (state in ``root/paper.db``)."""

    root: Path
    faults: Mapping[str, float] = field(default_factory=dict)
    bar_seconds: float = 0.1
    partial_fill_probability: float = 0.1
    keys: Secrets = CHAOS_KEYS
    url: str = ""
    process: subprocess.Popen[bytes] | None = None
    #: 0 picks a free port; a fixed one lets a killed server come back at the same URL.
    port: int = 0

    @property
    def output(self) -> Path:
        return self.root / "paper-server.out"

    def start(self, timeout_s: float = 20.0) -> ServerProcess:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "paper-server.toml"
        config.write_text(
            SERVER_CONFIG.format(
                root=self.root,
                partial=self.partial_fill_probability,
                faults="\n".join(f"{name} = {value}" for name, value in self.faults.items()),
                bar_seconds=self.bar_seconds,
            )
        )
        start_at = self.output.stat().st_size if self.output.exists() else 0
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "autoquant.runtime.paper_server",
                    "--port",
                    str(self.port),
                    "--config",
                    str(config),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **key_env(self.keys)},
            )

        def listening() -> str | None:
            assert self.process is not None
            text = self.output.read_bytes()[start_at:].decode(errors="replace")
            for line in text.splitlines():
                if line.startswith(LISTENING):
                    return line.split()[-1]
            if self.process.poll() is not None:
                raise RuntimeError(f"paper-server exited with {self.process.returncode}: {text[-2000:]}")
            return None

        try:
            self.url = wait_for(listening, timeout_s, "paper-server to listen")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 10.0) -> int | None:
        if self.process is None:
            return None
        code = _stop(self.process, timeout_s)
        self.process = None
        return code

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class DaemonProcess:
    """``python -m autoquant --config ROOT/autoquant.toml run`` against a paper-server URL, or on the
    embedded paper exchange when ``url`` is None."""

    root: Path
    url: str | None = None
    bar_seconds: float = 0.1
    keys: Secrets = CHAOS_KEYS
    #: More environment for every run and CLI call (e.g. NOTIFY_SOCKET).
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Trade MSFT with every order type (``MixedOrders``), as the crash and chaos suites do.
    mixed_orders: bool = False
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            daemon_config(
                self.root, url=self.url, bar_seconds=self.bar_seconds, mixed_orders=self.mixed_orders
            )
        )

    @property
    def config(self) -> Path:
        return self.root / "autoquant.toml"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.db"

    @property
    def output(self) -> Path:
        """stdout and stderr of every run, appended (the JSON log is ``root/autoquant.log``)."""
        return self.root / "daemon.out"

    def env(self, crash_at: str | None = None) -> dict[str, str]:
        env = {**os.environ, **key_env(self.keys), **self.extra_env}
        env.pop("AUTOQUANT_CRASH_AT", None)
        if crash_at is not None:
            env["AUTOQUANT_CRASH_AT"] = crash_at
        return env

    def start(self, crash_at: str | None = None) -> int:
        """Start a run; returns its start time (ns) to wait for this run's start-up reconciliation."""
        assert self.process is None or self.process.poll() is not None, "the previous run is still alive"
        self.runs += 1
        started = time.time_ns()
        with self.output.open("ab") as out:
            out.write(f"--- run {self.runs} crash_at={crash_at}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "autoquant", "--config", str(self.config), "run"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env(crash_at),
            )
        return started

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready_since(self, since_ns: int) -> bool:
        """This run recorded its start-up reconciliation (trading starts right after it)."""
        runs = read_ledger(self.ledger, lambda ledger: ledger.reconciliations_since(since_ns))
        return any(run.trigger == "startup" for run in runs or [])

    def ready_or_exited(self, since_ns: int) -> bool:
        """Ready since ``since_ns``, or dead (a failed start must not be waited on for a minute)."""
        return self.ready_since(since_ns) or not self.alive()

    def decisions_since(self, since_ns: int) -> int:
        return read_ledger(self.ledger, lambda ledger: ledger.decision_count_since(since_ns)) or 0

    def wait_exit(self, timeout_s: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> int | None:
        """SIGKILL the run (no clean-up happens, as on power loss); its return code (-9) or None."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        return self.process.wait(timeout=10)

    def terminate(self, timeout_s: float = 20.0) -> int:
        """SIGTERM (the drain) and wait; a run that outlives ``timeout_s`` is killed (and returns -9)."""
        assert self.process is not None
        return _stop(self.process, timeout_s)

    def cli(self, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``autoquant --config ROOT/autoquant.toml ARGS…`` with this daemon's environment."""
        return subprocess.run(
            [sys.executable, "-m", "autoquant", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout_s,
            check=False,
        )

    def resolve_open_incidents(self, note: str) -> list[str]:
        """``autoquant resolve ID --note NOTE`` for every open incident, as an operator who checked them
        would before resuming; returns the ids resolved."""
        listed = self.cli("incidents", "--open", "--json")
        if listed.returncode != 0:
            raise RuntimeError(f"autoquant incidents failed: {listed.stderr}")
        ids = [str(row["incident_id"]) for row in json.loads(listed.stdout)]
        for incident_id in ids:
            resolved = self.cli("resolve", incident_id, "--note", note)
            if resolved.returncode != 0:
                raise RuntimeError(f"autoquant resolve {incident_id} failed: {resolved.stderr}")
        return ids

    def reconcile(self, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``autoquant reconcile`` on this ledger: exit 0 clean, 1 mismatch, 2 error."""
        return self.cli("reconcile", timeout_s=timeout_s)

    def tail(self, lines: int = 40) -> str:
        """The end of the process output and of the JSON log, for failure messages."""
        parts = []
        for path in (self.output, self.root / "autoquant.log"):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"== {path.name}\n" + "\n".join(text))
        return "\n".join(parts)
