"""``backtest_bars_per_s``: one ``sma_cross`` strategy over one-minute bars through the whole path.

The bars are a seeded random walk written to a CSV under .bench/ (the same file every time). The run
goes through ``autoquant backtest``'s own functions (checking pass, the composition root under the
virtual clock, the report), in a child process so its peak RSS is its own. The same bars are then
crossed by a vectorized numpy SMA with next-open fills; the trades must be the same, and the ratio of
the two speeds is what the production path (ids, ledger, risk gate, exchange) costs per bar.
"""

from __future__ import annotations

import itertools
import json
import random
import resource
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from autoquant.bench.common import BENCH_DIR, Sizes

START = 1_704_205_800  # 2024-01-02T14:30:00Z
FAST, SLOW = 10, 20


def write_minute_bars(path: Path, count: int, seed: int = 5) -> Path:
    """``count`` one-minute bars of one symbol (BENCH), a seeded random walk, prices to the cent."""
    if path.exists() and path.stat().st_size > 0:
        with path.open() as handle:
            if sum(1 for _ in handle) == count + 1:
                return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    price = 100.0
    with path.open("w") as handle:
        handle.write("timestamp,open,high,low,close,volume\n")
        for i in range(count):
            open_ = price
            close = max(1.0, open_ * (1 + rng.gauss(0, 0.002)))
            high = max(open_, close) * (1 + abs(rng.gauss(0, 0.0005)))
            low = min(open_, close) * (1 - abs(rng.gauss(0, 0.0005)))
            handle.write(f"{START + 60 * i},{open_:.2f},{high:.2f},{low:.2f},{close:.2f},100\n")
            price = float(f"{close:.2f}")
    return path


CONFIG = """
[marketdata]
symbols = ["BENCH"]
bar_seconds = 60
[paper]
slippage_bps = "0"
fee_bps = "0"
partial_fill_probability = 0.0
[risk]
max_orders_per_minute = 1000000
[[strategies]]
id = "sma-bench"
kind = "sma_cross"
symbol = "BENCH"
[strategies.params]
fast = {fast}
slow = {slow}
qty = "1"
"""


def peak_rss_mb() -> float:
    """This process's own peak RSS. Linux's VmHWM belongs to the address space (exec starts it afresh);
    ``ru_maxrss`` is kept across exec, so a child started by a big parent would inherit its peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(bars: str, workdir: str) -> None:
    """Run one backtest in this process; print its report and peak RSS as one JSON line."""
    from autoquant.logs import configure_logging
    from autoquant.logs.settings import LoggingSettings
    from autoquant.research.backtest import backtest_config, run_backtest
    from autoquant.research.bars import check_bars
    from autoquant.research.report import ledger_fills, round_trips
    from autoquant.runtime.config import load

    directory = Path(workdir)
    config_path = directory / "bench.toml"
    config_path.write_text(CONFIG.format(fast=FAST, slow=SLOW))
    config = load(config_path)
    summary = check_bars(Path(bars), 60)
    run_config = backtest_config(config, summary, directory)
    # Logged as `autoquant backtest` logs (warnings, to a file): not structlog's default console.
    logging = configure_logging(
        LoggingSettings(path=directory / "backtest.log", level="warning"), renderer_process=False
    )
    try:
        outcome = run_backtest(run_config, summary)
    finally:
        logging.close()
    trades, _ = round_trips(ledger_fills(run_config.ledger.path))
    print(
        json.dumps(
            {
                "bars": outcome.bars,
                "wall_s": outcome.wall_s,
                "loop_turns": outcome.loop_turns,
                "floor_us": floor_us(bars, workdir, min(5_000, outcome.bars - SLOW - 1))
                if outcome.bars > 2 * (SLOW + 1)
                else {},
                "trades": [[str(t.entry_price), str(t.exit_price)] for t in trades],
                "rss_mb": peak_rss_mb(),
            }
        )
    )


def floor_us(bars: str, workdir: str, count: int = 5_000) -> dict[str, float]:
    """What one bar costs at least on the production path, part by part, in microseconds (process CPU
    time, in this process, right after the run): the parts every bar goes through whatever else is
    made faster. ``loop_turn``: one turn of the virtual clock's loop (``asyncio.sleep(0)``);
    ``csv_bar``: reading one bar of the file (already checked) into a ``Bar``; ``decide``: the
    strategy's state (as the worker builds it) and ``sma_cross``'s decision on it;
    ``hold_rows``: the rows one hold writes (decision, its journal row, the state it saw, its bar)
    in transactions of 512, as the deferred holds go, on a ledger with the backtest's settings."""
    import asyncio

    from autoquant.clocks import VirtualClock
    from autoquant.domain.strategy import StrategyState
    from autoquant.ledger.connection import connect_writer, migrate_file
    from autoquant.ledger.rows import insert_decision
    from autoquant.ledger.seen import insert_bars, insert_decision_state
    from autoquant.ledger.threads import run_write_batch
    from autoquant.research.bars import stream_bars
    from autoquant.strategies.sma_cross import SmaCross

    def timed(work: Any) -> float:
        started = time.process_time()
        work()
        return (time.process_time() - started) / count * 1e6

    files = [Path(bars)]
    loaded: list[Any] = []
    csv_bar = timed(lambda: loaded.extend(itertools.islice(stream_bars(files, 60), count + SLOW + 1)))
    strategy = SmaCross(id="sma-bench", symbol="BENCH", fast=FAST, slow=SLOW, qty=Decimal(1))
    windows = [tuple(loaded[i : i + SLOW + 1]) for i in range(count)]
    decisions: list[Any] = []

    def decide() -> None:
        for window in windows:
            state = StrategyState.assemble(
                strategy_id="sma-bench",
                symbols=("BENCH",),
                bars={"BENCH": window},
                now_ns=window[-1].close_ns,
                max_data_age_ns=60_000_000_000,
            )
            decisions.append(strategy.decide(state))

    decide_us = timed(decide)

    async def turns() -> None:
        for _ in range(count):
            await asyncio.sleep(0)

    loop_turn = timed(lambda: VirtualClock(autojump_threshold_s=0.0).run(turns()))
    path = Path(workdir) / "floor.db"
    migrate_file(path)
    conn = connect_writer(path, durable=False)
    state_json = '{"bars": {"BENCH": 22}, "data_age_ns": 0, "data_fresh": true, "holdings": {}}'

    def rows() -> None:
        for start in range(0, count, 512):

            def write(conn: Any, start: int = start) -> None:
                for i in range(start, min(count, start + 512)):
                    insert_decision(conn, decisions[i], 0)
                    insert_bars(conn, windows[i][-1:])
                    insert_decision_state(conn, decisions[i].decision_id, state_json)

            run_write_batch(conn, [write])

    try:
        hold_rows = timed(rows)
    finally:
        conn.close()
    return {"loop_turn": loop_turn, "csv_bar": csv_bar, "decide": decide_us, "hold_rows": hold_rows}


def stream_child(bars: str) -> None:
    """The parts of a backtest that see every bar, alone: the checking pass, the streamed second pass
    grouped by time as the clocked source does, and the report's equity pass. Prints peak RSS."""
    from autoquant.research.bars import check_bars, stream_bars
    from autoquant.research.report import equity_curve
    from autoquant.research.source import by_time

    summary = check_bars(Path(bars), 60)
    groups = sum(1 for _ in by_time(stream_bars(summary.files, 60)))
    curve = equity_curve(stream_bars(summary.files, 60), [], Decimal(100_000))
    body = {"bars": summary.count, "groups": groups, "points": len(curve.points), "rss_mb": peak_rss_mb()}
    print(json.dumps(body))


def _run_child(bars: Path, name: str) -> dict[str, Any]:
    workdir = BENCH_DIR / name
    if workdir.exists():
        for item in workdir.iterdir():
            item.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "autoquant.bench.backtest_speed", str(bars), str(workdir)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def numpy_trades(path: Path) -> tuple[list[list[str]], float]:
    """The same rule, vectorized: long-only SMA cross on closes, filled at the next bar's open."""
    import numpy as np

    started = time.perf_counter()
    data = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(1, 4))
    # In integer cents, and fast vs slow compared as FAST*SLOW-scaled sums: exact, as Decimal is.
    opens = np.rint(data[:, 0] * 100).astype(np.int64)
    closes = np.rint(data[:, 1] * 100).astype(np.int64)
    sums = np.concatenate(([0], np.cumsum(closes)))
    ends = np.arange(SLOW, len(closes) + 1)  # windows ending at bar j = end - 1
    fast = sums[ends] - sums[ends - FAST]
    slow = sums[ends] - sums[ends - SLOW]
    diff = fast * SLOW - slow * FAST  # index j is bar j + SLOW - 1
    up = np.flatnonzero((diff[:-1] <= 0) & (diff[1:] > 0)) + SLOW
    down = np.flatnonzero((diff[:-1] >= 0) & (diff[1:] < 0)) + SLOW
    events = sorted([(int(k), 1) for k in up] + [(int(k), -1) for k in down])
    trades, entry = [], None
    last = len(closes) - 1
    for k, sign in events:
        if k >= last:
            break
        if sign > 0 and entry is None:
            entry = k + 1
        elif sign < 0 and entry is not None:
            trades.append([f"{opens[entry] / 100:.2f}", f"{opens[k + 1] / 100:.2f}"])
            entry = None
    return trades, time.perf_counter() - started


def run(sizes: Sizes) -> dict[str, Any]:
    count = sizes.backtest_bars
    bars = write_minute_bars(BENCH_DIR / f"bars_{count}" / "BENCH.csv", count)
    measured = _run_child(bars, "backtest")
    small = max(500, count // 10)
    small_bars = write_minute_bars(BENCH_DIR / f"bars_{small}" / "BENCH.csv", small)
    baseline = _run_child(small_bars, "backtest_small")
    expected, numpy_s = numpy_trades(bars)
    stream_count = sizes.backtest_stream_bars
    stream_bars_path = write_minute_bars(BENCH_DIR / f"bars_{stream_count}" / "BENCH.csv", stream_count)
    streamed = json.loads(
        subprocess.run(
            [sys.executable, "-m", "autoquant.bench.backtest_speed", "--stream", str(stream_bars_path)],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    got = [
        [str(Decimal(a).quantize(Decimal("0.01"))), str(Decimal(b).quantize(Decimal("0.01")))]
        for a, b in measured["trades"]
    ]
    same = got == expected
    per_s = measured["bars"] / measured["wall_s"]
    floor = {name: round(us, 1) for name, us in measured["floor_us"].items()}
    turns_per_bar = measured["loop_turns"] / measured["bars"]
    # At least, on the loop's thread: the bar's turns of the loop, its CSV row, its decision; on the
    # ledger's writer thread (another core, at best all in parallel): the rows of its hold.
    loop_us = (
        turns_per_bar * floor.get("loop_turn", 0.0) + floor.get("csv_bar", 0.0) + floor.get("decide", 0.0)
    )
    floor_bar_us = max(loop_us, floor.get("hold_rows", 0.0))
    return {
        "backtest_bars": measured["bars"],
        "backtest_bars_per_s": round(per_s, 1),
        "backtest_loop_turns_per_bar": round(turns_per_bar, 2),
        "backtest_floor_us": floor,
        "backtest_floor_bars_per_s": round(1e6 / floor_bar_us, 1) if floor_bar_us else None,
        "backtest_rss_mb": round(measured["rss_mb"], 1),
        "backtest_rss_mb_tenth": round(baseline["rss_mb"], 1),
        "backtest_vs_numpy": round((count / numpy_s) / per_s, 1) if numpy_s > 0 else None,
        "backtest_same_trades_as_numpy": same,
        "backtest_stream_bars": streamed["bars"],
        "backtest_stream_rss_mb": round(streamed["rss_mb"], 1),
        "notes": [
            f"backtest_stream_rss_mb: peak RSS of the passes that see every bar (check, stream, equity) over "
            f"{streamed['bars']} bars; the whole path at that size was not run (it would take "
            f"{streamed['bars'] / per_s / 60:.0f} min at the measured rate)",
            f"backtest: {measured['bars']} one-minute bars, sma_cross {FAST}/{SLOW}, {len(got)} round trips; "
            f"peak RSS {measured['rss_mb']:.0f} MB vs {baseline['rss_mb']:.0f} MB for {small} bars "
            "(bars are streamed; what grows is outside the Python heap: SQLite caches over a larger ledger)",
            f"numpy: {len(expected)} round trips in {numpy_s * 1000:.1f} ms; same trades: {same}",
            f"backtest_floor_us: what every bar costs at least (process CPU, measured after the run): "
            f"{turns_per_bar:.2f} loop turns of {floor.get('loop_turn', 0.0):.1f} us, its CSV row "
            f"{floor.get('csv_bar', 0.0):.1f} us, state and decision {floor.get('decide', 0.0):.1f} us, "
            f"the rows of its hold {floor.get('hold_rows', 0.0):.1f} us (on the writer thread): "
            f"{loop_us:.0f} us a bar on the loop's thread, {floor_bar_us:.0f} us with the writer wholly "
            f"in parallel, so no more than backtest_floor_bars_per_s even if everything else (orders, "
            f"fills, risk, kill switch, the ledger's other writes) were free",
        ],
    }


if __name__ == "__main__":
    from autoquant.runtime.daemon import prefer_loop_latency

    prefer_loop_latency()  # as `autoquant backtest` and the daemon run
    if sys.argv[1] == "--stream":
        stream_child(sys.argv[2])
    else:
        child(sys.argv[1], sys.argv[2])
