"""Which ledger events become alerts, and that each says what happened, what trading does, what to run."""

from __future__ import annotations

from autoquant.alerts import messages
from autoquant.alerts.settings import AlertEvent, ChannelSettings, Severity
from autoquant.alerts.worker import wants


def control(kind: str, actor: str, scope: str = "account") -> dict[str, object]:
    return {"kind": kind, "actor": actor, "reason": "why", "scope": scope}


def test_a_halt_alert_names_the_commands() -> None:
    """A halt is critical, says who and why, that new orders stop, and the commands to run."""
    draft = messages.from_event("control", 7, control("halt", "kill-switch"), "halted")
    assert draft is not None and draft.event is AlertEvent.HALTED and draft.severity is Severity.CRITICAL
    assert "kill-switch: why" in draft.body and "no new orders" in draft.body
    assert "`autoquant incidents --open`" in draft.body and '`autoquant resume --reason "…"`' in draft.body
    assert draft.alert_id == messages.from_event("control", 7, control("halt", "x"), "halted").alert_id  # type: ignore[union-attr]


def test_operator_pauses_do_not_alert_but_the_daemons_do() -> None:
    """An operator's own pause is not news to them; the daemon's pause of a strategy is."""
    assert messages.from_event("control", 1, control("pause", "ann@cli", "s1"), "active") is None
    draft = messages.from_event("control", 2, control("pause", "reconciler", "s1"), "active")
    assert draft is not None and draft.event is AlertEvent.PAUSED_BY_DAEMON
    assert "autoquant resume --strategy s1" in draft.body


def test_a_supervisor_halt_is_a_crash_loop_and_channels_filter() -> None:
    """The supervisor's halt is a worker crash loop; a channel takes only its events and severities."""
    draft = messages.from_event("control", 3, control("halt", "supervisor"), "halted")
    assert draft is not None and draft.event is AlertEvent.WORKER_CRASH_LOOP
    assert wants(ChannelSettings(url="json://h/p"), draft)
    assert not wants(ChannelSettings(url="json://h/p", events=[AlertEvent.HALTED]), draft)
    info = messages.daily_summary("2026-01-05", "active", {"realized": "1", "fees": "0"}, 3, 0)
    assert not wants(ChannelSettings(url="json://h/p", min_severity=Severity.WARNING), info)
