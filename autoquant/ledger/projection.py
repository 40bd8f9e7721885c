"""The ledger's hot state in memory: what the tick path reads, kept equal to the ledger on disk.

``Projection`` is built from the ledger when it opens (cost grows with open orders, positions,
controls and a bounded window of recent submissions, not with history) and then follows every
committed write, in commit order, through ``WriterThread``'s ``on_commit`` callbacks. So a strategy
decision, its risk check and the pre-submit check read nothing from disk.

It also holds what the kill switch's triggers need, derived from the ledger so they survive a
restart: the broker's submission outcomes in ledger order (the reject streak, the submission rate)
and the UNKNOWN orders with the time they became unknown.

Both are the first transition of their kind per order, so the write path and a rebuild from disk
agree by construction:

- an order was *sent* when it records its first transition the broker caused (``SENT_KINDS``:
  accepted, rejected, submit_unknown, partial_fill, fill), at that transition's local time;
- its *submission outcome* is its first transition in ``OUTCOME_KINDS`` (the same without
  submit_unknown: an unknown outcome is decided later, when the lookup resolves it): a rejection
  if that is REJECTED, an acceptance otherwise. The reject streak counts rejections in a row among
  the latest outcomes, in journal order.
"""

from __future__ import annotations

import bisect
import sqlite3
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from autoquant.domain.controls import Control, ControlKind, ControlState, apply_control, fold_controls
from autoquant.domain.orders import Order, OrderEventKind, OrderStatus
from autoquant.domain.positions import Position
from autoquant.ledger.rows import read_open_orders, read_positions

#: The broker's answers to a submission: an outcome (accepted, rejected, filled at once).
OUTCOME_KINDS = frozenset(
    {OrderEventKind.ACCEPTED, OrderEventKind.REJECTED, OrderEventKind.PARTIAL_FILL, OrderEventKind.FILL}
)
#: Transitions that mean the order was sent to the broker (DENIED never left the daemon).
SENT_KINDS = OUTCOME_KINDS | {OrderEventKind.SUBMIT_UNKNOWN}
#: How many recent submissions (and outcomes) the projection keeps, and loads on open.
SUBMISSION_WINDOW = 4096


@dataclass(frozen=True)
class Submission:
    """An order's first transition of one class (sent, or outcome), as the ledger recorded it."""

    seq: int  # journal seq of the transition
    client_order_id: str
    rejected: bool
    local_ts_ns: int


def firsts(previous_kinds: set[str], kind: OrderEventKind) -> tuple[bool, bool]:
    """(is this the order's first sent transition, its first outcome), given its earlier event kinds."""
    sent = kind in SENT_KINDS and not previous_kinds & {k.value for k in SENT_KINDS}
    outcome = kind in OUTCOME_KINDS and not previous_kinds & {k.value for k in OUTCOME_KINDS}
    return sent, outcome


@dataclass(frozen=True)
class OrderCommitted:
    """What ``Ledger`` hands the projection after a write that touched an order."""

    order: Order
    sent: Submission | None = None
    outcome: Submission | None = None


@dataclass(frozen=True)
class ControlCommitted:
    control: Control
    control_seq: int  # controls.seq
    journal_seq: int


@dataclass
class Projection:
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    open_orders: dict[str, Order] = field(default_factory=dict)
    controls: ControlState = field(default_factory=ControlState)
    control_seq: int = 0
    control_journal_seq: int = 0
    submissions: deque[Submission] = field(default_factory=lambda: deque(maxlen=SUBMISSION_WINDOW))
    #: The same submissions' times, kept sorted: the order-rate window is one bisect, not a walk.
    submission_times: list[int] = field(default_factory=list)
    outcomes: deque[Submission] = field(default_factory=lambda: deque(maxlen=SUBMISSION_WINDOW))
    #: The day ``book`` last asked about, and every (snapshot seq, equity) recorded since it started.
    equity_day: int | None = None
    equity_values: list[tuple[int, Decimal]] = field(default_factory=list)
    #: (first, peak, latest) of ``equity_values``, kept as they grow: a risk check must not walk a
    #: day of account polls (one every few seconds) on every tick.
    equity_summary: tuple[Decimal, Decimal, Decimal] | None = None
    #: The latest committed snapshots (seq, time, equity), to merge into a day read from disk.
    recent_equity: deque[tuple[int, int, Decimal]] = field(default_factory=lambda: deque(maxlen=64))

    # -- building --------------------------------------------------------------------------------

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> Projection:
        """The projection as of what ``conn`` sees (run in one read transaction)."""
        rows = conn.execute(
            "SELECT c.seq, c.kind, c.scope, c.reason, c.actor, c.local_ts_ns, j.seq FROM controls c"
            " LEFT JOIN journal j ON j.kind = 'control' AND j.row_seq = c.seq ORDER BY c.seq"
        ).fetchall()
        controls = [
            Control(kind=ControlKind(k), scope=s, reason=r, actor=a, local_ts_ns=t)
            for _, k, s, r, a, t, _ in rows
        ]
        projection = cls(
            positions=read_positions(conn),
            open_orders={o.client_order_id: o for o in read_open_orders(conn)},
            controls=fold_controls(controls),
            control_seq=int(rows[-1][0]) if rows else 0,
            control_journal_seq=int(rows[-1][6] or 0) if rows else 0,
        )
        projection.submissions.extend(read_firsts(conn, SENT_KINDS, SUBMISSION_WINDOW))
        projection.submission_times = sorted(s.local_ts_ns for s in projection.submissions)
        projection.outcomes.extend(read_firsts(conn, OUTCOME_KINDS, SUBMISSION_WINDOW))
        return projection

    def set_equity_day(self, day_start_ns: int, rows: list[tuple[int, Decimal]]) -> None:
        """Start following a new day from its snapshots read from disk (plus any committed since)."""
        last = rows[-1][0] if rows else 0
        later = [(s, e) for s, t, e in self.recent_equity if s > last and t >= day_start_ns]
        self.equity_day, self.equity_values = day_start_ns, [*rows, *later]
        values = [equity for _, equity in self.equity_values]
        self.equity_summary = (values[0], max(values), values[-1]) if values else None

    # -- following commits -------------------------------------------------------------------------

    def order_committed(self, change: OrderCommitted | None) -> None:
        if change is None:
            return
        order = change.order
        if order.status.is_terminal:
            self.open_orders.pop(order.client_order_id, None)
        else:
            self.open_orders[order.client_order_id] = order
        if change.sent is not None:
            if len(self.submissions) == SUBMISSION_WINDOW:
                self.submission_times.remove(self.submissions[0].local_ts_ns)  # the deque drops it next
            self.submissions.append(change.sent)
            bisect.insort(self.submission_times, change.sent.local_ts_ns)
        if change.outcome is not None:
            self.outcomes.append(change.outcome)

    def fill_committed(self, key: tuple[str, str], position: Position) -> None:
        self.positions[key] = position

    def control_committed(self, change: ControlCommitted) -> None:
        if change.control_seq <= self.control_seq:
            return  # already folded in (read back from disk by a sync)
        self.controls = apply_control(self.controls, change.control)
        self.control_seq = change.control_seq
        self.control_journal_seq = change.journal_seq

    def equity_committed(self, snapshot_seq: int, equity: Decimal, local_ts_ns: int) -> None:
        self.recent_equity.append((snapshot_seq, local_ts_ns, equity))
        last = self.equity_values[-1][0] if self.equity_values else 0
        if self.equity_day is not None and local_ts_ns >= self.equity_day and snapshot_seq > last:
            self.equity_values.append((snapshot_seq, equity))
            summary = self.equity_summary
            self.equity_summary = (
                (equity, equity, equity) if summary is None else (summary[0], max(summary[1], equity), equity)
            )

    # -- named reads -------------------------------------------------------------------------------

    def equity(self) -> tuple[Decimal, Decimal, Decimal] | None:
        return self.equity_summary

    def reject_streak(self, since_seq: int = 0) -> int:
        """Rejections in a row among the latest submission outcomes after journal seq ``since_seq``."""
        streak = 0
        for submission in reversed(self.outcomes):
            if submission.seq <= since_seq or not submission.rejected:
                break
            streak += 1
        return streak

    def submissions_since(self, since_ns: int) -> list[int]:
        """The times (local ns) orders were sent to the broker, at or after ``since_ns``, oldest first."""
        times = self.submission_times
        return times[bisect.bisect_left(times, since_ns) :]

    def unknown_orders(self) -> list[Order]:
        """Orders whose submit outcome is unknown; ``updated_ns`` is when they became UNKNOWN."""
        found = [o for o in self.open_orders.values() if o.status is OrderStatus.UNKNOWN]
        return sorted(found, key=lambda o: (o.updated_ns, o.client_order_id))


def read_firsts(conn: sqlite3.Connection, kinds: frozenset[OrderEventKind], limit: int) -> list[Submission]:
    """The latest ``limit`` first-transitions-of-``kinds`` (one per order), oldest first; walks order
    events newest first, so the cost is bounded by the window, not by history."""
    values = sorted(k.value for k in kinds)
    marks = ",".join("?" * len(values))
    rows = conn.execute(
        # CROSS JOIN and +e.kind keep SQLite walking order_events newest first and stopping at LIMIT
        # (left to itself it would read every journalled order event and sort them).
        "SELECT j.seq, e.client_order_id, e.kind, e.local_ts_ns FROM order_events e"
        " CROSS JOIN journal j ON j.kind = 'order_event' AND j.row_seq = e.seq"
        f" WHERE +e.kind IN ({marks}) AND e.seq = (SELECT min(seq) FROM order_events f"
        f"   WHERE f.client_order_id = e.client_order_id AND f.kind IN ({marks}))"
        " ORDER BY e.seq DESC LIMIT ?",
        (*values, *values, limit),
    ).fetchall()
    return [
        Submission(int(seq), str(coid), kind == OrderEventKind.REJECTED.value, int(ts))
        for seq, coid, kind, ts in reversed(rows)
    ]


__all__ = [
    "ControlCommitted",
    "OrderCommitted",
    "Projection",
    "Submission",
]
