"""Whether the running daemon is healthy, and if not, why, in words: what the status file publishes.

Healthy means every worker beats within its bound and none failed fatally, the broker has not been
unreachable for more than ``[daemon] broker_unreachable_s`` and the last reconciliation did not fail, the
ledger's disk has room, and market data is still flowing (a CSV replay that reached its end is not).
"""

from __future__ import annotations

from autoquant.domain.values import iso_utc, to_ns
from autoquant.runtime.system import System


def last_bar_time(system: System, symbol: str) -> str | None:
    """The close time of the latest bar the daemon saw for ``symbol`` (UTC ISO)."""
    bars = system.market.bars.get(symbol)
    return iso_utc(to_ns(bars[-1].close_time)) if bars else None


def market_data_ended(system: System) -> str | None:
    """When the bar source ended (the latest bar's close, or "before any bar"); None while it flows."""
    worker = system.market_data
    if worker is None or not worker.source_ended.is_set():
        return None
    times = [to_ns(bars[-1].close_time) for bars in system.market.bars.values() if bars]
    return iso_utc(max(times)) if times else "before any bar"


def unhealthy_reasons(system: System) -> list[str]:
    """Why the daemon is not healthy; an empty list means healthy."""
    reasons: list[str] = []
    supervisor = system.supervisor
    if supervisor.fatal is not None:
        name, error = supervisor.fatal
        reasons.append(f"worker {name} failed: {error}")
    elif not supervisor.healthy():
        reasons.append("a worker missed its heartbeat (see workers)")
    down_s = system.reachability.unreachable_for_s()
    if down_s > system.config.daemon.broker_unreachable_s:
        error = system.reachability.snapshot()["last_error"]
        reasons.append(f"broker unreachable for {down_s:.0f} s ({error})")
    if system.reconciler.last_failure is not None:
        reasons.append(f"the last reconciliation failed ({system.reconciler.last_failure})")
    if system.ledger.disk_full is not None:
        reasons.append(str(system.ledger.disk_full))
    ended = market_data_ended(system)
    if ended is not None:
        source = system.config.marketdata.source
        reasons.append(f"market data ended at {ended} ({source} source): no new bars, no new decisions")
    return reasons
