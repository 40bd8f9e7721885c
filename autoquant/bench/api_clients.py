"""``python -m autoquant.bench.api_clients BASE_URL N COUNT_FILE [NICE [idle]]``: N concurrent clients
hammering the operator API (status, open orders, positions, metrics, decisions, in turn, as fast as it
answers) until SIGTERM; the running request count is written to COUNT_FILE every 0.2 s. The token is read
from ``$AUTOQUANT_API_TOKEN``. It runs in its own process so the load costs the bench's process nothing
but the machine's CPU, as real clients on other hosts would cost the API; NICE (and ``idle``:
SCHED_IDLE) lower its own priority, so on this host it takes only the CPU time trading leaves. Like the
API it leaves the bench's session for its own, whose scheduler group weighs NICE (``yield_cpu``): a load
generator left in the bench's autogroup would be charged to the trading loop's share of the host, which
no dashboard on another host is."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import httpx

from autoquant.runtime.priority import yield_cpu

PATHS = ("/api/v1/status", "/api/v1/orders?open=true", "/api/v1/positions", "/metrics", "/api/v1/decisions")


async def client(http: httpx.AsyncClient, counts: list[int], index: int) -> None:
    turn = index
    while True:
        try:
            await http.get(PATHS[turn % len(PATHS)])
        except httpx.HTTPError:
            await asyncio.sleep(0.05)  # the API restarting: back off briefly
        counts[0] += 1
        turn += 1


def _publish(count_file: Path, count: int) -> None:
    count_file.write_text(str(count))


async def main(base: str, clients: int, count_file: Path) -> None:
    token = os.environ["AUTOQUANT_API_TOKEN"]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    counts = [0]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30.0, limits=limits
    ) as http:
        tasks = [asyncio.create_task(client(http, counts, i)) for i in range(clients)]
        while not stop.is_set():
            _publish(count_file, counts[0])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    _publish(count_file, counts[0])


if __name__ == "__main__":
    if len(sys.argv) > 4:  # the load generator's own priority (every thread: runtime/priority.py)
        yield_cpu(int(sys.argv[4]), idle=sys.argv[5:6] == ["idle"])
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])))
