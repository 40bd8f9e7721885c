"""``Ledger``: a ``LedgerReader`` plus every durable write, and the in-memory projection of hot state.

Writes are appends (the database's triggers refuse anything else); each public method is one write
queued to the ``WriterThread``, which batches whatever is queued into one transaction, each write in
its own savepoint. After COMMIT, on the loop and in commit order, each write's ``on_commit`` updates
the ``Projection``, which then answers the tick path's reads (``book``, ``open_orders``,
``positions``, ``control_state``, the kill switch's triggers) without touching the disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from autoquant.domain.bars import Bar
from autoquant.domain.broker import BrokerAccount
from autoquant.domain.controls import Control, ControlKind, ControlState
from autoquant.domain.decisions import Decision
from autoquant.domain.errors import IllegalTransition
from autoquant.domain.fills import Fill
from autoquant.domain.orders import KEEP, Order, OrderEvent, OrderEventKind, OrderStatus, apply, outcome
from autoquant.domain.positions import Position
from autoquant.errors import LedgerError, LedgerFull
from autoquant.ledger import oversight, requests, restores, seen, surface
from autoquant.ledger.backup import BackupInfo, insert_backup
from autoquant.ledger.connection import (
    ExternalWrites,
    ForeignCommits,
    WriterWatch,
    connect_writer,
    migrate_file,
    translate,
)
from autoquant.ledger.projection import (
    ControlCommitted,
    OrderCommitted,
    Projection,
    Submission,
    firsts,
)
from autoquant.ledger.reads import (
    Book,
    LedgerReader,
    _order_key,
    account_totals,
    equity_rows,
    open_reader_thread,
)
from autoquant.ledger.records import (
    BrokerRequest,
    CancelRequest,
    Incident,
    ReconciliationCursor,
    ReconciliationRun,
    RiskEvent,
)
from autoquant.ledger.rows import (
    insert_decision,
    insert_event,
    insert_fill,
    insert_order,
    insert_risk_event,
    journal_seq,
    load_order,
    maybe_checkpoint,
)
from autoquant.ledger.threads import OnCommit, ReaderThread, WriterThread

__all__ = ["Book", "EventResult", "Ledger"]

T = TypeVar("T")


@dataclass(frozen=True)
class EventResult:
    """What appending a broker update did."""

    order: Order | None
    changed: bool
    fill_recorded: bool | None = None  # None: no fill in the update; False: a duplicate
    illegal: IllegalTransition | None = None


#: At most this many deferred holds wait for the next write (one transaction carries them all).
DEFERRED_MAX = 512

#: The states in which the table keeps an order as it is on an ``accepted`` event. No event leads out
#: of them (tests/ledger pin it), so an order the projection shows in one of them is in one of them on
#: disk too, however far the disk is ahead: an ``accepted`` there changes nothing and writes no row.
ACCEPTED_KEEPS = frozenset(s for s in OrderStatus if outcome(s, OrderEventKind.ACCEPTED) is KEEP)


@dataclass(frozen=True)
class _Deferred:
    decision: Decision
    local_ts_ns: int
    bars: tuple[Bar, ...]
    state_json: str | None
    on_commit: Callable[[bool], None] | None


@dataclass(frozen=True)
class _UpdateCommitted:
    result: EventResult
    order: OrderCommitted | None
    position: tuple[tuple[str, str], Position] | None


def _reserved(conn: sqlite3.Connection, order: Order) -> OrderCommitted | None:
    if not insert_order(conn, order):
        return None
    return OrderCommitted(_as_reserved(order))


def _as_reserved(order: Order) -> Order:
    """``order`` as ``load_order`` reads it back right after ``insert_order`` (no event row yet): every
    column is stored as text and read back exactly; what a reservation does not store is reset."""
    fresh = {
        "filled_qty": Decimal(0),
        "broker_order_id": None,
        "reason": None,
        "updated_ns": order.created_ns,
    }
    if str(order.filled_qty) == "0" and all(
        getattr(order, k) == v for k, v in fresh.items() if k != "filled_qty"
    ):
        return order
    return order.model_copy(update=fresh)


def _as_stored(updated: Order, event: OrderEvent) -> Order:
    """``updated`` (``apply`` on the order as loaded) as ``load_order`` reads it back once ``event``'s
    row is its latest: the row carries its state, and its time as the order's ``updated_ns``."""
    updated_ns = event.local_ts_ns or updated.created_ns
    return (
        updated if updated.updated_ns == updated_ns else updated.model_copy(update={"updated_ns": updated_ns})
    )


def _fill(conn: sqlite3.Connection, fill: Fill) -> tuple[tuple[str, str], Position] | None:
    booked = insert_fill(conn, fill)
    if booked is None:
        return None
    strategy_id, position = booked
    return (strategy_id, position.symbol), position


def _seen(conn: sqlite3.Connection, decision: Decision, bars: Sequence[Bar], state_json: str | None) -> None:
    if bars:
        seen.insert_bars(conn, bars)
    if state_json is not None:
        seen.insert_decision_state(conn, decision.decision_id, state_json)


class Ledger(LedgerReader):
    """The reads (``LedgerReader``, hot ones from memory) plus every durable write."""

    def __init__(
        self,
        writer: WriterThread,
        reader: ReaderThread,
        path: Path,
        projection: Projection,
        external: ForeignCommits,
    ) -> None:
        super().__init__(reader, path)
        self._writer = writer
        self._projection = projection
        self._external = external
        #: Another connection (the CLI) committed since controls were last read from disk: read them.
        self._controls_stale = True
        #: Bumped when another connection commits, and when we commit an incident or a cancel request
        #: or outcome: the open incidents and pending cancels are read again only after a bump.
        self._foreign_generation = 0
        self._oversight_generation = 0
        self._oversight_cache: dict[str, tuple[tuple[int, int], Any]] = {}
        #: Holds queued by ``defer_decision``, written ahead of the next write (see there).
        self._deferred: list[_Deferred] = []
        self._deferred_failed: BaseException | None = None
        #: Look for other connections' commits at most this often (seconds of the loop's clock); 0: on
        #: every hot read, as the daemon does (the CLI's pause is obeyed at the next tick). A backtest
        #: paces it to the bars: nothing else writes its scratch ledger, and virtual time keeps the
        #: looks where they fall deterministic.
        self.foreign_poll_s = 0.0
        self._foreign_looked_at: float | None = None

    @property
    def disk_full(self) -> LedgerFull | None:
        """Why the latest write failed for want of room on the ledger's disk (None once one commits)."""
        return self._writer.full

    @property
    def halted_for_space(self) -> LedgerFull | None:
        """Set from the first write that failed for want of room until ``record_halt_for_space``: while
        set, trading is halted in memory (the ledger could not record a halt)."""
        return self._writer.full_since

    async def record_halt_for_space(self, control: Control) -> None:
        """Record the halt a full disk called for, once the disk has room again; only then does the
        in-memory halt end (the ledger's HALT takes over, and nothing resumes but an operator)."""
        await self.append_control(control)
        self._writer.full_since = None

    @classmethod
    async def open(cls, path: Path, *, durable: bool = True, on_loop: bool = False) -> Ledger:
        """Open (creating and migrating on first use) the ledger at ``path``; ``durable=False`` only for
        a backtest's own scratch ledger (no fsync per commit).

        ``on_loop=True`` (a backtest's, under the virtual clock) runs the writer's and the reader's
        batches on the loop, right after the turn that queued them, instead of on their threads: the
        same batches, transactions and commit-then-answer order, without a thread hop per write. With no
        fsync to wait for there is nothing to overlap, and on threads the loop stood idle while each of
        the order path's commits crossed over and back (about a millisecond each on a busy machine). Other
        connections' commits are then noticed by asking the writer's own connection (``WriterWatch``),
        with no second connection to read and re-read after every batch."""
        await asyncio.to_thread(migrate_file, path)
        try:
            writer_conn = connect_writer(path, durable=durable)
        except sqlite3.Error as error:
            raise translate(error, path) from error
        external: ForeignCommits
        if on_loop:
            # The loop owns the writer's connection between batches: it is asked directly.
            external = WriterWatch(writer_conn)
            writer = WriterThread(writer_conn, path, on_loop=True)
        else:
            try:
                watcher = ExternalWrites(path, writer_conn)
            except sqlite3.Error as error:
                writer_conn.close()
                raise translate(error, path) from error
            external = watcher
            writer = WriterThread(
                writer_conn, path, on_batch=watcher.absorb, before_batch=watcher.batch_starting
            )
        try:
            reader = open_reader_thread(path, on_loop=on_loop)
        except BaseException:
            await writer.close()
            external.close()
            raise
        try:
            projection = await reader.read(Projection.load)
        except BaseException:
            await reader.close()
            await writer.close()
            external.close()
            raise
        return cls(writer, reader, path, projection, external)

    async def close(self) -> None:
        """Commit every queued write, then close both connections: the writer last, so that closing
        the last connection checkpoints the WAL into the database file (a read-only one cannot)."""
        self._submit_deferred()
        await super().close()
        self._external.close()
        await self._writer.close()

    async def __aenter__(self) -> Ledger:
        return self

    # -- the hot reads, from memory ----------------------------------------------------------------

    async def get_order(self, client_order_id: str) -> Order | None:
        order = self._projection.open_orders.get(client_order_id)
        return order if order is not None else await super().get_order(client_order_id)

    async def open_orders(self) -> list[Order]:
        return sorted(self._projection.open_orders.values(), key=_order_key)

    async def positions(self) -> dict[tuple[str, str], Position]:
        return dict(self._projection.positions)

    async def account_positions(self) -> dict[str, Decimal]:
        return account_totals(self._projection.positions)

    async def control_state(self) -> ControlState:
        return self._projection.controls

    async def last_control_seq(self) -> int:
        """Fold in controls another process appended (the CLI), then return the latest controls seq.

        Our own controls reach the projection as they commit, so the disk is read only when another
        connection has committed since the last read (and once at first): the kill switch polls this.
        """
        if not self._foreign_commits():
            return self._projection.control_seq
        self._controls_stale = False  # a commit landing during the read is seen by the next look
        known = self._projection.control_seq

        def read(conn: sqlite3.Connection) -> list[ControlCommitted]:
            rows = conn.execute(
                "SELECT c.seq, c.kind, c.scope, c.reason, c.actor, c.local_ts_ns, j.seq FROM controls c"
                " JOIN journal j ON j.kind = 'control' AND j.row_seq = c.seq WHERE c.seq > ? ORDER BY c.seq",
                (known,),
            ).fetchall()
            return [
                ControlCommitted(
                    Control(kind=ControlKind(k), scope=s, reason=r, actor=a, local_ts_ns=t),
                    int(seq),
                    int(jseq),
                )
                for seq, k, s, r, a, t, jseq in rows
            ]

        try:
            changes = await self._reader.read(read)
        except BaseException:
            self._controls_stale = True
            raise
        for change in changes:
            self._projection.control_committed(change)
        return self._projection.control_seq

    def _foreign_commits(self) -> bool:
        """Whether another connection committed since controls were last read (sticky until read)."""
        if self.foreign_poll_s > 0:
            now = asyncio.get_running_loop().time()
            looked = self._foreign_looked_at
            if looked is not None and now - looked < self.foreign_poll_s:
                return self._controls_stale
            self._foreign_looked_at = now
        if self._external.changed():
            self._controls_stale = True
            self._foreign_generation += 1
        return self._controls_stale

    # -- oversight reads the kill switch and the execution sweep poll, cached ----------------------

    async def incidents(self, *, open_only: bool = False) -> list[Incident]:
        if not open_only:
            return await super().incidents()
        return list(
            await self._oversight_read(
                "open_incidents", lambda: super(Ledger, self).incidents(open_only=True)
            )
        )

    async def pending_cancel_requests(self) -> list[CancelRequest]:
        return list(await self._oversight_read("pending_cancels", super().pending_cancel_requests))

    async def pending_broker_requests(self) -> list[BrokerRequest]:
        # The execution sweep asks on every sweep (replace, then flatten): from the disk only after a
        # request or an outcome committed, ours or another connection's.
        return list(await self._oversight_read("pending_requests", super().pending_broker_requests))

    async def _oversight_read(self, name: str, read: Callable[[], Awaitable[list[Any]]]) -> list[Any]:
        """``read()``, or its previous answer when nothing that could change it has committed since
        (our own incident and cancel writes bump a generation on commit; another connection's commit
        is noticed through ``ExternalWrites``)."""
        self._foreign_commits()
        key = (self._oversight_generation, self._foreign_generation)
        cached = self._oversight_cache.get(name)
        if cached is not None and cached[0] == key:
            return list(cached[1])
        value = await read()
        self._oversight_cache[name] = (key, value)
        return list(value)

    def _oversight_committed(self, _: object = None) -> None:
        self._oversight_generation += 1

    async def control_journal_seq(self) -> int:
        return self._projection.control_journal_seq

    async def book(self, day_start_ns: int) -> Book:
        """Positions, open orders and today's equity, from memory (the disk is
        read once per day, for the day's first equity snapshots)."""
        projection = self._projection
        if self._foreign_commits():
            await self.last_control_seq()  # another process (the CLI) wrote: fold in its controls
        if projection.equity_day != day_start_ns:
            rows = await self._reader.read(lambda conn: equity_rows(conn, day_start_ns))
            projection.set_equity_day(day_start_ns, rows)
        return Book(
            positions=dict(projection.positions),
            open_orders=sorted(projection.open_orders.values(), key=_order_key),
            equity=projection.equity(),
        )

    async def unknown_orders(self) -> list[Order]:
        return self._projection.unknown_orders()

    async def reject_streak(self, since_seq: int = 0) -> int:
        return self._projection.reject_streak(since_seq)

    async def submissions_since(self, since_ns: int) -> list[int]:
        return self._projection.submissions_since(since_ns)

    async def projection_snapshot(self) -> Projection:
        """The in-memory projection itself (tests compare it with ``projection()`` read from disk)."""
        return self._projection

    # -- writes --------------------------------------------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection], T], on_commit: OnCommit | None = None) -> T:
        """Every write: the deferred holds go first (queued ahead of it, so they commit no later)."""
        if not self._deferred:
            return await self._writer.write(fn, on_commit)
        # One hand-over to the writer thread for both (each wakes it otherwise).
        deferred, write = self._writer.submit_many([self._take_deferred(), (fn, on_commit)])
        deferred.add_done_callback(self._deferred_done)
        result: T = await self._writer.settle(write)
        return result

    def defer_decision(
        self,
        decision: Decision,
        local_ts_ns: int,
        *,
        bars: Sequence[Bar] = (),
        state_json: str | None = None,
        on_commit: Callable[[bool], None] | None = None,
    ) -> None:
        """Queue a decision that acts on nothing (a hold) without waiting for it: it is written, in
        order, ahead of the next write of any kind (an acting decision, a fill, a control), or once
        ``DEFERRED_MAX`` are queued, or at ``flush``/``close``. ``on_commit(recorded)`` runs on the
        loop once it is durable. For a backtest, whose holds need not be durable one by one (a crash
        there loses a run that is simply rerun): the daemon records each hold before moving on."""
        if self._deferred_failed is not None:
            raise self._deferred_failed
        self._deferred.append(_Deferred(decision, local_ts_ns, tuple(bars), state_json, on_commit))
        if len(self._deferred) >= DEFERRED_MAX:
            self._submit_deferred()

    async def flush(self) -> None:
        """Write the deferred holds now and wait until they are durable."""
        future = self._submit_deferred()
        if future is not None:
            await asyncio.shield(future)
        if self._deferred_failed is not None:
            raise self._deferred_failed

    def _submit_deferred(self) -> asyncio.Future[list[bool]] | None:
        if not self._deferred:
            return None
        future: asyncio.Future[list[bool]] = self._writer.submit(*self._take_deferred())
        future.add_done_callback(self._deferred_done)
        return future

    def _take_deferred(self) -> tuple[Callable[[sqlite3.Connection], list[bool]], OnCommit]:
        """The queued holds as one write (and its on-commit), and the queue emptied."""
        items, self._deferred = self._deferred, []

        def write(conn: sqlite3.Connection) -> list[bool]:
            recorded = []
            for item in items:
                new = insert_decision(conn, item.decision, item.local_ts_ns)
                if new:
                    _seen(conn, item.decision, item.bars, item.state_json)
                recorded.append(new)
            return recorded

        def on_commit(recorded: list[bool]) -> None:
            for item, new in zip(items, recorded, strict=True):
                if item.on_commit is not None:
                    item.on_commit(new)

        return write, on_commit

    def _deferred_done(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            self._deferred_failed = future.exception()

    # -- decisions and reservations ------------------------------------------------------------

    async def record_decision(
        self,
        decision: Decision,
        local_ts_ns: int,
        *,
        bars: Sequence[Bar] = (),
        state_json: str | None = None,
    ) -> bool:
        """Append a decision (with the bars and state it saw, for replay); False if this decision id
        was already recorded (a replay)."""

        def write(conn: sqlite3.Connection) -> bool:
            if not insert_decision(conn, decision, local_ts_ns):
                return False
            _seen(conn, decision, bars, state_json)
            return True

        return await self._write(write)

    async def record_decision_outcome(
        self,
        decision: Decision,
        local_ts_ns: int,
        risk: RiskEvent | None,
        order: Order | None,
        *,
        bars: Sequence[Bar] = (),
        state_json: str | None = None,
    ) -> tuple[bool, bool]:
        """The decision, its risk check and its reservation in one transaction (one fsync).

        Returns (decision recorded, order reserved); a replayed decision records and reserves nothing.
        """
        if order is not None and order.status is not OrderStatus.RESERVED:
            raise ValueError("only a RESERVED order can be reserved")

        def write(conn: sqlite3.Connection) -> tuple[bool, OrderCommitted | None]:
            if not insert_decision(conn, decision, local_ts_ns):
                return False, None
            _seen(conn, decision, bars, state_json)
            if risk is not None:
                insert_risk_event(conn, risk)
            return True, None if order is None else _reserved(conn, order)

        def on_commit(result: tuple[bool, OrderCommitted | None]) -> None:
            self._projection.order_committed(result[1])

        recorded, reserved = await self._write(write, on_commit)
        return recorded, reserved is not None

    async def reserve(self, order: Order) -> bool:
        """Durably reserve an order under its client order id; False if that id is already taken."""
        if order.status is not OrderStatus.RESERVED:
            raise ValueError("only a RESERVED order can be reserved")
        reserved = await self._write(lambda conn: _reserved(conn, order), self._projection.order_committed)
        return reserved is not None

    # -- order events and fills ----------------------------------------------------------------

    async def apply_event(self, event: OrderEvent, *, risk: RiskEvent | None = None) -> EventResult:
        """Apply one order event. An event the table refuses is returned as ``illegal``, unapplied.

        ``risk``, the pre-submit check that led to it, is appended in the same transaction.
        """
        return await self.apply_update(event, None, risk=risk)

    async def append_fill(self, fill: Fill) -> bool:
        """Append one fill; False (and nothing written) if its execution id is already recorded."""

        def on_commit(booked: tuple[tuple[str, str], Position] | None) -> None:
            if booked is not None:
                self._projection.fill_committed(*booked)

        return await self._write(lambda conn: _fill(conn, fill), on_commit) is not None

    async def apply_update(
        self, event: OrderEvent, fill: Fill | None, *, risk: RiskEvent | None = None
    ) -> EventResult:
        """A broker update: its fill (counted once by execution id) and its event, in one transaction.

        The fill is broker truth and is kept even when the event is illegal in the order's state.
        ``risk`` (the pre-submit check that led to a submit's outcome) is appended with them, so the
        check and the outcome cost one commit, not two, on the order path.
        """

        if fill is None and risk is None:
            kept = self._kept(event)
            if kept is not None:
                return EventResult(kept, False)

        def write(conn: sqlite3.Connection) -> _UpdateCommitted:
            if risk is not None:
                insert_risk_event(conn, risk)
            # The transition is appended before its fill, so the journal reads "partially filled, the
            # fill" in that order; both are in one transaction either way.
            order = load_order(conn, event.client_order_id)
            if order is None:
                raise LedgerError(f"no reserved order {event.client_order_id} for event {event.kind}")
            try:
                updated = apply(order, event)
            except IllegalTransition as error:
                booked = None if fill is None else _fill(conn, fill)
                recorded = None if fill is None else booked is not None
                return _UpdateCommitted(EventResult(order, False, recorded, error), None, booked)
            if updated is order:
                booked = None if fill is None else _fill(conn, fill)
                recorded = None if fill is None else booked is not None
                return _UpdateCommitted(EventResult(order, False, recorded), None, booked)
            previous = {
                str(row[0])
                for row in conn.execute(
                    "SELECT kind FROM order_events WHERE client_order_id = ?", (order.client_order_id,)
                )
            }
            first_sent, first_outcome = firsts(previous, event.kind)
            event_seq = insert_event(conn, updated, event)
            if updated.status.is_terminal and not order.status.is_terminal:
                conn.execute(
                    "INSERT INTO order_closures (client_order_id, status, local_ts_ns) VALUES (?, ?, ?)",
                    (updated.client_order_id, updated.status.value, event.local_ts_ns),
                )
                maybe_checkpoint(conn, event.local_ts_ns)
            booked = None if fill is None else _fill(conn, fill)
            recorded = None if fill is None else booked is not None
            submission = None
            if first_sent or first_outcome:
                submission = Submission(
                    journal_seq(conn, "order_event", event_seq),
                    updated.client_order_id,
                    event.kind is OrderEventKind.REJECTED,
                    event.local_ts_ns,
                )
            committed = OrderCommitted(
                _as_stored(updated, event),
                submission if first_sent else None,
                submission if first_outcome else None,
            )
            return _UpdateCommitted(EventResult(updated, True, recorded), committed, booked)

        def on_commit(committed: _UpdateCommitted) -> None:
            if committed.position is not None:
                self._projection.fill_committed(*committed.position)
            self._projection.order_committed(committed.order)

        return (await self._write(write, on_commit)).result

    def _kept(self, event: OrderEvent) -> Order | None:
        """The order, when ``event`` is an ``accepted`` that would leave it as it is, known from memory:
        its transaction would write nothing (a kept event is no row of the history) and answer the same,
        so none is run. That is the broker stream's echo of an acknowledgement already recorded, once
        per order. Only with no write waiting to be answered (so the projection has seen every write
        queued before this one), and only where the table keeps it whatever the order's later state."""
        if event.kind is not OrderEventKind.ACCEPTED or self._writer.unanswered:
            return None
        order = self._projection.open_orders.get(event.client_order_id)
        if order is None or order.status not in ACCEPTED_KEEPS:
            return None
        try:
            return order if apply(order, event) is order else None
        except IllegalTransition:
            return None  # the write finds the same and reports it

    # -- controls, incidents, risk, reconciliation (SQL in ``oversight``) --------------------------

    async def append_control(self, control: Control, *, incident_id: str | None = None) -> None:
        """Append a control; ``incident_id`` links it to the incident it answers."""
        await self._write(
            lambda conn: oversight.insert_control(conn, control, incident_id),
            self._projection.control_committed,
        )

    async def open_incident(
        self,
        *,
        kind: str,
        subject: str,
        scope: str,
        message: str,
        action: str,
        details: dict[str, Any],
        local_ts_ns: int,
    ) -> tuple[str, bool]:
        """Open an incident unless one of the same kind and subject is still open.

        Returns the incident id and whether it is new.
        """
        draft = oversight.IncidentDraft(kind, subject, scope, message, action, details, local_ts_ns)
        return await self._write(lambda conn: oversight.open_incident(conn, draft), self._oversight_committed)

    async def resolve_incident(self, incident_id: str, actor: str, note: str, local_ts_ns: int) -> bool:
        return await self._write(
            lambda conn: oversight.resolve_incident(conn, incident_id, actor, note, local_ts_ns),
            self._oversight_committed,
        )

    async def append_risk_event(self, event: RiskEvent) -> None:
        await self._write(lambda conn: insert_risk_event(conn, event))

    async def record_reconciliation(
        self,
        run: ReconciliationRun,
        *,
        account: BrokerAccount | None = None,
        account_ts_ns: int | None = None,
        cursor: ReconciliationCursor | None = None,
    ) -> None:
        """The run, the account it read and its cursor, in one transaction (the tracking-table pattern:
        a restarted reconciler resumes from exactly the last recorded run)."""

        def on_commit(snapshot: oversight.EquityRow | None) -> None:
            if snapshot is not None:
                self._projection.equity_committed(*snapshot)

        await self._write(
            lambda conn: oversight.insert_reconciliation(conn, run, account, account_ts_ns, cursor), on_commit
        )

    async def record_account(self, account: BrokerAccount, local_ts_ns: int) -> None:
        def on_commit(snapshot: oversight.EquityRow) -> None:
            self._projection.equity_committed(*snapshot)

        await self._write(lambda conn: oversight.insert_account(conn, account, local_ts_ns), on_commit)

    async def record_backup(self, info: BackupInfo, trigger: str, local_ts_ns: int) -> None:
        """Record a verified backup (path, last global sequence, size, hash)."""
        await self._write(lambda conn: insert_backup(conn, info, trigger, local_ts_ns))

    async def adopt_order(
        self, order: Order, broker_order_id: str, restore_seq: int, local_ts_ns: int
    ) -> bool:
        """Reserve a broker order the restored ledger lacked, marked adopted (its decision unknown);
        its state and fills follow through ``apply_event`` and ``append_fill``. False if already known."""

        def write(conn: sqlite3.Connection) -> OrderCommitted | None:
            if not restores.insert_adoption(conn, order, broker_order_id, restore_seq, local_ts_ns):
                return None
            stored = load_order(conn, order.client_order_id)
            return None if stored is None else OrderCommitted(stored)

        return await self._write(write, self._projection.order_committed) is not None

    async def request_cancel(self, target: str, reason: str, actor: str, local_ts_ns: int) -> int:
        """An operator's cancel request (a client order id, or ``*`` for all open orders)."""
        return await self._write(
            lambda conn: oversight.insert_cancel_request(conn, target, reason, actor, local_ts_ns),
            self._oversight_committed,
        )

    async def record_cancel_outcome(
        self, request_seq: int, canceled: int, detail: str, local_ts_ns: int
    ) -> None:
        await self._write(
            lambda conn: oversight.insert_cancel_outcome(conn, request_seq, canceled, detail, local_ts_ns),
            self._oversight_committed,
        )

    # -- requests carried out at the broker: replace, flatten (SQL in ``requests``) -----------------

    async def request_at_broker(
        self, kind: str, target: str, params: dict[str, str], reason: str, actor: str, local_ts_ns: int
    ) -> int:
        """An operator's replace (target: a client order id) or flatten (target ``*``); its seq."""
        return await self._writer.write(
            lambda conn: requests.insert_request(conn, kind, target, params, reason, actor, local_ts_ns),
            self._oversight_committed,
        )

    async def record_request_outcome(self, request_seq: int, ok: bool, detail: str, local_ts_ns: int) -> bool:
        """The outcome of a broker request; False if it already has one."""
        return await self._writer.write(
            lambda conn: requests.insert_outcome(conn, request_seq, ok, detail, local_ts_ns),
            self._oversight_committed,
        )

    async def reserve_replacement(self, order: Order, request_seq: int, local_ts_ns: int) -> bool:
        """Reserve a replacement and close the request that asked for it, in one transaction; False
        if that request already has its outcome."""

        def write(conn: sqlite3.Connection) -> tuple[bool, OrderCommitted | None]:
            if not requests.reserve_replacement(conn, order, request_seq, local_ts_ns):
                return False, None
            stored = load_order(conn, order.client_order_id)
            return True, None if stored is None else OrderCommitted(stored)

        def on_commit(result: tuple[bool, OrderCommitted | None]) -> None:
            self._oversight_committed()
            self._projection.order_committed(result[1])

        done, _ = await self._writer.write(write, on_commit)
        return done

    def commit_p99_s(self) -> float | None:
        """The p99 duration of the latest write batches (BEGIN to COMMIT), seconds."""
        return self._writer.commit_p99_s()

    @property
    def write_batches(self) -> int:
        """Write transactions run since the ledger opened (one fsync each; the bench divides by appends)."""
        return self._writer.batches

    async def request_manual_order(self, order: surface.ManualOrder) -> tuple[bool, surface.ManualOrder]:
        """Record an operator's order request; (new?, the request already under its client order id)."""
        return await self._write(lambda conn: surface.insert_manual_order(conn, order))

    # -- alerts (SQL in ``surface``) -----------------------------------------------------------------

    async def record_alert(self, alert: surface.AlertRecord) -> bool:
        """An alert, recorded before it is sent; False if its id is already recorded."""
        return await self._write(lambda conn: surface.insert_alert(conn, alert))

    async def record_alert_delivery(
        self, alert_id: str, channel: str, outcome: str, attempts: int, detail: str, local_ts_ns: int
    ) -> None:
        await self._write(
            lambda conn: surface.insert_alert_delivery(
                conn, alert_id, channel, outcome, attempts, detail, local_ts_ns
            )
        )
