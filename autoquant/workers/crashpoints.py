"""Named crash points for the crash-test suite: the process SIGKILLs itself where the test says.

``AUTOQUANT_CRASH_AT=after_submit`` kills the process the first time it passes that point;
``after_submit:3`` the third time. Never an exception: a real SIGKILL, so nothing gets to clean up,
exactly as when the machine loses power or the OOM killer strikes. Unset, a crash point costs one
dictionary lookup.

Points: after_decision, after_reservation, after_submit (the broker accepted, the acknowledgement is
not stored), after_ack, before_fill_stored (a fill received from the stream, not yet stored),
during_reconciliation, during_shutdown.
"""

from __future__ import annotations

import os
import signal
import sys

ENV = "AUTOQUANT_CRASH_AT"
POINTS = frozenset(
    {
        "after_decision",
        "after_reservation",
        "after_submit",
        "after_ack",
        "before_fill_stored",
        "during_reconciliation",
        "during_shutdown",
    }
)


def _parse(spec: str | None) -> tuple[str, int] | None:
    if not spec:
        return None
    name, _, count = spec.partition(":")
    if name not in POINTS:
        raise SystemExit(f"{ENV}={spec!r}: unknown crash point; known: {', '.join(sorted(POINTS))}")
    return name, int(count or "1")


_target = _parse(os.environ.get(ENV))
_hits: dict[str, int] = {}


def crashpoint(name: str) -> None:
    """SIGKILL this process if ``AUTOQUANT_CRASH_AT`` names this point and its count is reached."""
    if _target is None or _target[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= _target[1]:
        sys.stderr.write(f"crashpoint {name}: SIGKILL\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
