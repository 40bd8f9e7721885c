"""Which ledger events become alerts, and their words: what happened, what trading is doing now, and the
exact command to run. Pure functions of a journal event (and the trading state after it)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from autoquant.alerts.settings import AlertEvent, Severity

INSPECT = "autoquant incidents --open"
RESUME = 'autoquant resume --reason "…"'
STATUS = "autoquant status"


@dataclass(frozen=True)
class Draft:
    """An alert before it is recorded: ``dedup_key`` folds repeats within the window into the first."""

    event: AlertEvent
    severity: Severity
    dedup_key: str
    title: str
    body: str
    source_seq: int | None

    @property
    def alert_id(self) -> str:
        """Deterministic for a journal event (a restarted worker re-raising it is refused by the ledger)."""
        basis = f"{self.event.value}:{self.source_seq}" if self.source_seq is not None else self.dedup_key
        return "al-" + hashlib.sha256(basis.encode()).hexdigest()[:24]


def is_operator(actor: str) -> bool:
    """An operator's act (``user@cli``, ``api@host``) rather than the daemon's own (``killswitch``, …)."""
    return "@" in actor


def _text(happened: str, now: str, commands: list[str]) -> str:
    lines = [happened, f"Trading now: {now}"]
    lines += [f"Run: `{command}`" for command in commands]
    return "\n".join(lines)


def from_event(kind: str, seq: int, fields: dict[str, Any], trading_state: str) -> Draft | None:
    """The alert a journal event raises, or None. ``trading_state`` is the state after the event."""
    state = trading_state.upper()
    if kind == "control":
        control, actor, reason = str(fields["kind"]), str(fields["actor"]), str(fields["reason"])
        scope = str(fields["scope"])
        if control == "halt":
            event = AlertEvent.WORKER_CRASH_LOOP if actor == "supervisor" else AlertEvent.HALTED
            return Draft(
                event,
                Severity.CRITICAL,
                f"{event.value}:{scope}",
                f"autoquant HALTED by {actor}",
                _text(
                    f"Trading was halted by {actor}: {reason}",
                    "HALTED: no new orders; open orders, fills, reconciliation and cancels carry on",
                    [INSPECT, RESUME],
                ),
                seq,
            )
        if control == "reduce":
            return Draft(
                AlertEvent.REDUCING,
                Severity.WARNING,
                f"reducing:{scope}",
                f"autoquant REDUCING by {actor}",
                _text(
                    f"Trading was set to reduce-only by {actor}: {reason}",
                    "REDUCING: only orders that shrink exposure are accepted",
                    [INSPECT, RESUME],
                ),
                seq,
            )
        if control == "pause" and not is_operator(actor):
            target = "the whole account" if scope == "account" else f"strategy {scope}"
            resume = RESUME if scope == "account" else f'autoquant resume --strategy {scope} --reason "…"'
            return Draft(
                AlertEvent.PAUSED_BY_DAEMON,
                Severity.WARNING,
                f"paused:{scope}",
                f"autoquant paused {target}",
                _text(
                    f"The daemon ({actor}) paused {target}: {reason}",
                    f"{state}; {target} places no new orders",
                    [INSPECT, resume],
                ),
                seq,
            )
        return None
    if kind == "incident":
        return Draft(
            AlertEvent.INCIDENT_OPENED,
            Severity.WARNING,
            f"incident:{fields['kind']}:{fields['subject']}",
            f"autoquant incident: {fields['kind']} ({fields['subject']})",
            _text(
                f"Incident {fields['incident_id']} opened: {fields['message']}\n"
                f"What to do: {fields['action']}",
                state,
                [INSPECT, f'autoquant resolve {fields["incident_id"]} --note "…"'],
            ),
            seq,
        )
    if kind == "reconciliation" and not fields.get("clean", True):
        summary = fields.get("summary") or {}
        kinds = ", ".join(sorted({str(i.get("kind")) for i in summary.get("incidents", [])})) or "mismatch"
        return Draft(
            AlertEvent.RECONCILIATION_MISMATCH,
            Severity.WARNING,
            f"reconciliation:{kinds}",
            "autoquant reconciliation mismatch",
            _text(
                f"Reconciliation ({fields.get('trigger')}) found what it cannot explain: {kinds}",
                state,
                [INSPECT, "autoquant reconcile"],
            ),
            seq,
        )
    return None


def broker_unreachable(seconds: float, trading_state: str) -> Draft:
    return Draft(
        AlertEvent.BROKER_UNREACHABLE,
        Severity.CRITICAL,
        "broker_unreachable",
        "autoquant: broker unreachable",
        _text(
            f"No reconciliation has reached the broker for {seconds:.0f} s",
            f"{trading_state.upper()}; orders cannot be sent or confirmed while the broker is unreachable",
            [STATUS, "autoquant logs --since 10m --level warning"],
        ),
        None,
    )


def daily_summary(day: str, trading_state: str, pnl: dict[str, Any], fills: int, incidents: int) -> Draft:
    return Draft(
        AlertEvent.DAILY_SUMMARY,
        Severity.INFO,
        f"daily_summary:{day}",
        f"autoquant daily summary {day}",
        _text(
            f"{day}: realized {pnl.get('realized')}, fees {pnl.get('fees')}, {fills} fill(s), "
            f"{incidents} open incident(s)",
            trading_state.upper(),
            [STATUS],
        ),
        None,
    )
