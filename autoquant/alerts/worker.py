"""The alert worker: follows the ledger's journal, turns what an operator must know into alerts, records
each before it is sent, and hands it to the delivery thread. It never waits on a channel.

Where it resumes: after the newest event it alerted on (``alerts.source_seq``), so an alert lost to a
crash between the event and its record is raised on the next start; an alert already recorded is not
raised twice (its id derives from the event). On a ledger that has never alerted it starts at the
journal's end as of its own start, which the daemon takes before the start-up reconciliation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from autoquant.alerts import messages
from autoquant.alerts.delivery import Deliverer, Job, channel_label
from autoquant.alerts.settings import AlertSettings, ChannelSettings
from autoquant.domain.clock import Clock
from autoquant.ledger import Ledger
from autoquant.ledger.surface import AlertRecord

log = structlog.get_logger("autoquant.alerts")

#: How often the journal is looked at (one indexed read).
POLL_S = 0.5


def wants(channel: ChannelSettings, draft: messages.Draft) -> bool:
    if channel.events is not None and draft.event not in channel.events:
        return False
    return draft.severity.rank >= channel.min_severity.rank


class AlertWorker:
    def __init__(
        self,
        ledger: Ledger,
        settings: AlertSettings,
        clock: Clock,
        *,
        unreachable_after_s: float,
        heartbeat: Callable[[], None] = lambda: None,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.clock = clock
        self.unreachable_after_s = unreachable_after_s
        self.heartbeat = heartbeat
        self.cursor: int | None = None
        self._last_sent: dict[str, float] = {}
        self._unreachable = False
        self._summary_day: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.deliverers = [Deliverer(settings, c, self._report_from_thread) for c in settings.channels]

    async def prepare(self) -> None:
        """Fix the cursor now (the daemon calls this before its start-up reconciliation)."""
        recorded = await self.ledger.alert_cursor()
        self.cursor = recorded if recorded is not None else await self.ledger.last_seq()

    def start_delivery(self) -> None:
        """Start each channel's delivery thread (their outcomes are recorded through this loop)."""
        self._loop = asyncio.get_running_loop()
        for deliverer in self.deliverers:
            if not deliverer.thread.is_alive() and deliverer.thread.ident is None:
                deliverer.start()

    def stop_delivery(self) -> None:
        for deliverer in self.deliverers:
            deliverer.stop(timeout_s=0.0)

    async def run(self) -> None:
        if self.cursor is None:
            await self.prepare()
        self.start_delivery()
        try:
            while True:
                self.heartbeat()
                await self.poll()
                await self.clock.sleep(POLL_S)  # a polling period
        except asyncio.CancelledError:
            self.stop_delivery()  # shutting down; after a failure the threads carry on for the next run
            raise

    async def poll(self) -> None:
        assert self.cursor is not None
        while True:
            events = await self.ledger.events_after(self.cursor, limit=500)
            if events:
                state = (await self.ledger.control_state()).trading_state.value
            for event in events:
                draft = messages.from_event(event.kind, event.seq, event.fields, state)
                if draft is not None:
                    await self.raise_alert(draft)
                self.cursor = event.seq
            if len(events) < 500:
                break
        await self._check_broker()
        await self._daily_summary()

    async def raise_alert(self, draft: messages.Draft) -> None:
        """Record the alert, then queue it (or fold it into the same alert sent within the window)."""
        now_ns, now = self.clock.now_ns(), self.clock.monotonic()
        record = AlertRecord(
            draft.alert_id,
            draft.event.value,
            draft.severity.value,
            draft.dedup_key,
            draft.source_seq,
            draft.title,
            draft.body,
            now_ns,
        )
        if not await self.ledger.record_alert(record):
            return  # raised before a restart
        log.info("alert_raised", alert_id=record.alert_id, alert_event=record.event, severity=record.severity)
        last = self._last_sent.get(draft.dedup_key)
        if last is not None and now - last < self.settings.dedup_window_s:
            await self.ledger.record_alert_delivery(
                record.alert_id, "*", "folded", 0, "a repeat within the dedup window", now_ns
            )
            return
        chosen = [d for d in self.deliverers if wants(d.channel, draft)]
        if not chosen:
            return
        self._last_sent[draft.dedup_key] = now
        job = Job(record.alert_id, record.title, record.body, record.severity)
        for deliverer in chosen:
            if not deliverer.submit(job):
                await self.ledger.record_alert_delivery(
                    record.alert_id,
                    channel_label(deliverer.channel.url),
                    "failed",
                    0,
                    "its queue is full",
                    now_ns,
                )

    def _report_from_thread(
        self, alert_id: str, channel: str, outcome: str, attempts: int, detail: str
    ) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(
            self.ledger.record_alert_delivery(
                alert_id, channel, outcome, attempts, detail, self.clock.now_ns()
            ),
            loop,
        )
        future.result(timeout=10.0)

    async def _check_broker(self) -> None:
        last = await self.ledger.last_reconciliation()
        if last is None:
            return
        age_s = (self.clock.now_ns() - last.finished_ns) / 1e9
        if age_s <= self.unreachable_after_s:
            self._unreachable = False
            return
        if not self._unreachable:
            self._unreachable = True
            state = (await self.ledger.control_state()).trading_state.value
            await self.raise_alert(messages.broker_unreachable(age_s, state))

    async def _daily_summary(self) -> None:
        at = self.settings.daily_summary_utc
        if at is None:
            return
        now = datetime.fromtimestamp(self.clock.now_ns() / 1e9, tz=UTC)
        day = now.strftime("%Y-%m-%d")
        if now.strftime("%H:%M") < at or self._summary_day == day:
            return
        self._summary_day = day
        state = (await self.ledger.control_state()).trading_state.value
        incidents = len(await self.ledger.incidents(open_only=True))
        day_start = int(datetime(now.year, now.month, now.day, tzinfo=UTC).timestamp()) * 10**9
        fills = len(await self.ledger.fill_history(since_ns=day_start))
        realized = sum(
            (m.latest_pnl - m.before_pnl for m in await self.ledger.realized_marks(day_start)), start=0
        )
        fees = sum(
            (m.latest_fees - m.before_fees for m in await self.ledger.realized_marks(day_start)), start=0
        )
        pnl = {"realized": str(realized), "fees": str(fees)}
        await self.raise_alert(messages.daily_summary(day, state, pnl, fills, incidents))
