"""Run in a fresh process by ``startup``: get to "ready" on a copied ledger, print the time and peak RSS.

``ledger`` mode: ``Ledger.open`` + ``open_orders()`` + ``positions()`` + ``control_state()``, the reads
any start-up needs. ``daemon`` mode: the daemon's own start-up (lock, ledger, embedded paper
exchange, start-up reconciliation, pending-order resolution, workers) until it sets ``ready``, where
it would send READY=1 to systemd; then it is asked to stop. The parent times the process from spawn
to the ``ready`` line; the child reports its peak RSS (``VmHWM``) after it is ready, and the bytes it
read from the start of start-up to ready (``read_mb``: what start-up costs in reads, not in time).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()

READY = "bench-ready"


def _peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM``, which starts afresh at exec.

    ``ru_maxrss`` does not: Linux carries the forking parent's high-water mark across ``execve``, so
    a child of a big bench process would report the parent's peak. It is the fallback elsewhere.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def bytes_read() -> int | None:
    """Bytes this process has read through system calls so far (``rchar``; None off Linux).

    SQLite reads its pages with ``pread``, so a start-up that scans a table reads bytes in proportion to
    the table, whatever the page cache holds: it is the bounded-work check of ``startup_read_mb``.
    """
    try:
        with open("/proc/self/io", encoding="ascii") as io:
            for line in io:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _read_since(before: int | None) -> float | None:
    after = bytes_read()
    return None if before is None or after is None else round((after - before) / 1e6, 3)


async def _ledger_ready(path: Path) -> dict[str, object]:
    from autoquant.ledger import Ledger

    before = bytes_read()
    ledger = await Ledger.open(path)
    try:
        open_orders = await ledger.open_orders()
        positions = await ledger.positions()
        controls = await ledger.control_state()
        return {
            "open_orders": len(open_orders),
            "positions": len(positions),
            "trading": controls.trading_state,
            "read_mb": _read_since(before),
        }
    finally:
        await ledger.close()


async def _daemon_ready(directory: Path) -> dict[str, object]:
    from autoquant.runtime.config import (
        Config,
        LedgerSettings,
        LoggingSettings,
        MarketDataSettings,
        PaperSettings,
    )
    from autoquant.runtime.daemon import Daemon
    from autoquant.runtime.sdnotify import Notifier

    config = Config(
        ledger=LedgerSettings(path=directory / "ledger.db"),
        paper=PaperSettings(state_path=directory / "paper.db", latency_s=0.0),
        marketdata=MarketDataSettings(symbols=["AAPL", "MSFT"]),
        logging=LoggingSettings(path=directory / "daemon.log"),
    )
    daemon = Daemon(config, notifier=Notifier(None))
    before = bytes_read()
    run = asyncio.create_task(daemon.run())
    ready = asyncio.create_task(daemon.ready.wait())
    await asyncio.wait({run, ready}, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        await run  # raises what stopped the start
        raise RuntimeError("the daemon stopped before it was ready")
    ready_s = time.perf_counter() - STARTED
    read_mb = _read_since(before)
    print(READY, flush=True)
    daemon.request_stop()
    await run
    return {"ready_after_imports_s": ready_s, "read_mb": read_mb}


def main(argv: list[str]) -> int:
    mode, where = argv[0], Path(argv[1])
    if mode == "ledger":
        details = asyncio.run(_ledger_ready(where))
        print(READY, flush=True)
    else:
        from autoquant.logs import configure_logging
        from autoquant.runtime.config import LoggingSettings

        with configure_logging(LoggingSettings(path=where / "daemon.log"), stderr_tty=False):
            details = asyncio.run(_daemon_ready(where))
    print(json.dumps({"rss_mb": round(_peak_rss_mb(), 1), **details}, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
