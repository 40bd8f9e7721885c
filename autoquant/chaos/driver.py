"""``make chaos``: SIGKILL the daemon at random moments against a faulty exchange, then demand convergence.

One paper-server process lives through the whole run with its faults on (dropped responses after accept,
5xx, 429, duplicated and reordered stream events, a stream disconnect every 3 s). Each cycle starts the
daemon on the same ledger and SIGKILLs it after a random 0.5–3 s, counted from the spawn in a quarter of
the cycles (start-up, the start-up reconciliation) and from readiness in the rest (trading: submits,
fills, periodic reconciliations), since start-up alone takes 1–2 s. MSFT is traded with every order type
(``mixed_orders.MixedOrders``: market, limit, stop, stop-limit), and in three trading cycles in four the
driver replaces one of the daemon's resting limit or stop orders (``autoquant replace``, made to fill at
the last close) before the kill, so kills land in replaces too. Then the exchange is restarted **with
faults off** (its state is in its SQLite file, so nothing is lost) and a clean run follows: start, trade
a few seconds, SIGTERM (exit 0 expected), ``autoquant reconcile`` (exit 0 expected). The final check runs
against a quiet exchange so that what it judges is what the chaos left behind, not a fault injected at
the very moment of the check.

Prints one JSON line ``{"cycles", "replaces", "exchange_orders", "fills", "orphans", "duplicates",
"mismatches", "unresolved"}`` on stdout, details on stderr, and exits 1 unless the last four are 0 and
the clean run and the reconciliation both exited 0. Environment: ``CHAOS_CYCLES`` (50), ``CHAOS_SEED``
(random, printed), ``CHAOS_DIR`` (a new temp dir, kept when the run fails), ``CHAOS_CLEAN_RUN_S`` (3),
``CHAOS_FINAL_FAULTS=1`` (keep the faults on for the clean run and the check; reconcile is retried).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TextIO

from autoquant.chaos.convergence import Convergence, check_convergence, freeze_exchange
from autoquant.chaos.processes import CHAOS_FAULTS, CHAOS_KEYS, DaemonProcess, ServerProcess, wait_for
from autoquant.ledger.connection import readonly_uri

KILL_AFTER_S = (0.5, 3.0)
#: The share of cycles whose kill delay counts from the spawn rather than from readiness.
STARTUP_SHARE = 0.25
#: The share of trading cycles in which a resting order is replaced before the kill.
REPLACE_SHARE = 0.75


@dataclass
class ChaosReport:
    cycles: int
    #: Replaces the driver asked for (``autoquant replace`` accepted the request).
    replaces: int = 0
    #: Cycles killed after readiness (the rest may die anywhere from interpreter start-up on).
    trading_kills: int = 0
    #: Runs that ended by themselves before their kill, with their return codes.
    early_exits: list[int] = field(default_factory=list)
    clean_run_exit: int | None = None
    reconcile_exit: int | None = None
    reconcile_output: str = ""
    convergence: Convergence | None = None

    def line(self) -> dict[str, int]:
        assert self.convergence is not None
        counts = self.convergence.counts()
        return {"cycles": self.cycles, "replaces": self.replaces, **counts}

    @property
    def ok(self) -> bool:
        return (
            self.convergence is not None
            and self.convergence.converged
            and self.clean_run_exit == 0
            and self.reconcile_exit == 0
        )


def say(message: str, err: TextIO) -> None:
    err.write(f"chaos: {message}\n")
    err.flush()


#: A resting limit or stop order the daemon has sent (its latest state ``accepted``), with the last close.
RESTING = """
SELECT o.client_order_id, o.order_type, o.side,
       (SELECT b.close FROM bars b WHERE b.symbol = o.symbol ORDER BY b.close_ns DESC LIMIT 1)
FROM orders o
WHERE o.order_type != 'market'
  AND (SELECT e.status_after FROM order_events e WHERE e.client_order_id = o.client_order_id
       ORDER BY e.seq DESC LIMIT 1) = 'accepted'
ORDER BY o.seq DESC LIMIT 5
"""


def replace_resting(daemon: DaemonProcess, rng: random.Random, err: TextIO) -> bool:
    """``autoquant replace`` one of the daemon's resting limit or stop orders, made to fill: its limit 1 %
    through the last close, its stop 1 % on the triggered side; False if there is none or it was refused."""
    if not daemon.ledger.exists():
        return False
    try:
        with sqlite3.connect(readonly_uri(daemon.ledger), uri=True, timeout=5) as conn:
            resting = conn.execute(RESTING).fetchall()
    except sqlite3.Error as error:
        say(f"replace: the ledger could not be read ({error})", err)
        return False
    if not resting:
        return False
    coid, order_type, side, close = rng.choice(resting)
    if close is None:
        return False
    price = Decimal(close)
    up, down = (Decimal("1.01"), Decimal("0.99")) if side == "buy" else (Decimal("0.99"), Decimal("1.01"))
    # 1 % through the last close: a limit becomes marketable and a stop is triggered (a buy stop below
    # the market, a sell stop above it), so the order fills and the strategy moves on to the next type.
    through, triggered = (str((price * f).quantize(Decimal("0.01"))) for f in (up, down))
    terms = {
        "limit": ["--limit-price", through],
        "stop": ["--stop-price", triggered],
        "stop_limit": ["--stop-price", triggered, "--limit-price", through],
    }[order_type]
    result = daemon.cli("replace", coid, *terms, "--reason", "chaos: move it to the market")
    if result.returncode != 0:
        # Refused, typically because the order filled or was replaced meanwhile: a race, not a fault.
        say(f"replace of {coid} refused: {result.stderr.strip()[:200]}", err)
        return False
    return True


def kill_cycles(
    daemon: DaemonProcess, cycles: int, rng: random.Random, report: ChaosReport, err: TextIO
) -> None:
    """Each cycle: start, SIGKILL after a random 0.5–3 s. One cycle in four counts the delay from the
    spawn (it mostly dies in start-up or its reconciliation); the others from readiness (it dies while
    trading: in a submit, between a fill and its storage, in a periodic reconciliation...)."""
    for cycle in range(1, cycles + 1):
        started = daemon.start()
        if rng.random() >= STARTUP_SHARE:
            try:
                wait_for(partial(daemon.ready_or_exited, started), 90, "readiness")
            except TimeoutError:
                say(f"cycle {cycle}: not ready after 90 s", err)
            report.trading_kills += 1
            if rng.random() < REPLACE_SHARE and replace_resting(daemon, rng, err):
                report.replaces += 1
        # The kill moment is the experiment's random variable, not a condition to wait for.
        time.sleep(rng.uniform(*KILL_AFTER_S))
        if not daemon.alive():
            code = daemon.kill()
            report.early_exits.append(code if code is not None else 0)
            say(f"cycle {cycle}: the daemon had already exited with {code}", err)
            continue
        daemon.kill()
        if cycle % 10 == 0:
            say(f"{cycle}/{cycles} cycles", err)


def clean_run(daemon: DaemonProcess, trade_s: float, report: ChaosReport, err: TextIO) -> None:
    started = daemon.start()
    try:
        wait_for(partial(daemon.ready_or_exited, started), 90, "the clean run to be ready")
        if daemon.alive():
            time.sleep(trade_s)  # let it trade for a while: the duration is the point, not a condition
            if replace_resting(daemon, random.Random(0), err):
                report.replaces += 1
                time.sleep(1.0)  # and let the daemon carry it out before it is stopped
    finally:
        report.clean_run_exit = daemon.terminate()
    say(f"clean run exited {report.clean_run_exit}", err)


def final_reconcile(daemon: DaemonProcess, report: ChaosReport, err: TextIO, attempts: int) -> None:
    """``autoquant reconcile``; exit 2 (the broker could not be read: an injected fault) is retried."""
    result = daemon.reconcile()
    for _ in range(attempts - 1):
        if result.returncode != 2:
            break
        say("reconcile exited 2 (broker unreadable); again", err)
        result = daemon.reconcile()
    report.reconcile_exit = result.returncode
    report.reconcile_output = (result.stdout + result.stderr).strip()[-2000:]
    say(f"reconcile exited {result.returncode}: {report.reconcile_output.splitlines()[-1:]}", err)


def run_chaos(
    root: Path, cycles: int, seed: int, trade_s: float, err: TextIO, *, final_faults: bool = False
) -> ChaosReport:
    rng = random.Random(seed)
    report = ChaosReport(cycles=cycles)
    server = ServerProcess(root / "server", faults=CHAOS_FAULTS)
    server.start()
    try:
        daemon = DaemonProcess(root / "daemon", server.url, mixed_orders=True)
        say(f"{cycles} kill cycles against {server.url} (faults on)", err)
        try:
            kill_cycles(daemon, cycles, rng, report, err)
        finally:
            daemon.kill()
        if not final_faults:
            server.stop()
            server = ServerProcess(root / "server", faults={})
            server.start()
            # The restarted server has a new port.
            daemon = DaemonProcess(root / "daemon", server.url, mixed_orders=True)
        say(f"clean run against {server.url} (faults {'on' if final_faults else 'off'})", err)
        try:
            clean_run(daemon, trade_s, report, err)
        finally:
            daemon.kill()
        freeze_exchange(server.url, CHAOS_KEYS)  # resting orders would go on filling during the check
        final_reconcile(daemon, report, err, attempts=5 if final_faults else 1)
        report.convergence = check_convergence(daemon.ledger, server.url, CHAOS_KEYS)
    finally:
        server.stop()
    return report


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so the ``finally`` blocks stop the daemon and the server


def main(out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    cycles = int(os.environ.get("CHAOS_CYCLES", "50"))
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    trade_s = float(os.environ.get("CHAOS_CLEAN_RUN_S", "3"))
    chosen = os.environ.get("CHAOS_DIR")
    root = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="autoquant-chaos-"))
    say(f"seed {seed}; files in {root}", err)
    final_faults = os.environ.get("CHAOS_FINAL_FAULTS") == "1"
    report = run_chaos(root, cycles, seed, trade_s, err, final_faults=final_faults)
    assert report.convergence is not None
    out.write(json.dumps(report.line()) + "\n")
    out.flush()
    say(f"{report.trading_kills} of {cycles} kills counted from readiness", err)
    if report.early_exits:
        say(f"{len(report.early_exits)} runs exited before their kill: {report.early_exits}", err)
    if report.ok:
        if not chosen:
            shutil.rmtree(root, ignore_errors=True)
        return 0
    say(report.convergence.describe(), err)
    if report.clean_run_exit != 0 or report.reconcile_exit != 0:
        say(f"clean run exit {report.clean_run_exit}, reconcile exit {report.reconcile_exit}", err)
        say(report.reconcile_output, err)
    say(f"kept {root} (daemon/autoquant.log is the daemon's JSON log; rerun with CHAOS_SEED={seed})", err)
    return 1
