"""Whether the broker can be reached, as the workers last found it: REST and the order-update stream.

The reconciler and the kill switch's account poll report each REST call's outcome, the order-update
worker each stream subscription's; the daemon publishes the result in its status file, so
``autoquant status`` says "broker unreachable since …" instead of ``healthy: yes`` while every call
fails. A channel that comes back is logged (``broker_reachable_again``) and wakes the reconciler at
once (``on_back``): whatever happened while we could not see is in the broker's REST view.

This is liveness, like the supervisor's heartbeats: it lives in memory and is not ledger history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from autoquant.domain.clock import Clock
from autoquant.domain.values import iso_utc

log = structlog.get_logger("autoquant.broker")

Channel = Literal["rest", "stream"]
CHANNELS: tuple[Channel, ...] = ("rest", "stream")


@dataclass
class ChannelState:
    #: None until the first call says either way.
    reachable: bool | None = None
    #: Since when (UTC ns) the channel has been in its current state.
    since_ns: int | None = None
    since_mono: float = 0.0
    last_error: str | None = None


class BrokerReachability:
    def __init__(self, clock: Clock, *, on_back: Callable[[], None] | None = None) -> None:
        self.clock = clock
        self.on_back = on_back
        self.channels: dict[Channel, ChannelState] = {name: ChannelState() for name in CHANNELS}

    def ok(self, channel: Channel) -> None:
        """A call on ``channel`` succeeded."""
        state = self.channels[channel]
        if state.reachable:
            return
        was_down = state.reachable is False
        down_for = self.clock.monotonic() - state.since_mono
        self._set(state, reachable=True)
        if was_down:
            log.info("broker_reachable_again", channel=channel, down_for_s=round(down_for, 1))
            if self.on_back is not None:
                self.on_back()

    def failed(self, channel: Channel, error: BaseException | str) -> None:
        """A call on ``channel`` failed for want of the broker (a transient error, a timeout)."""
        state = self.channels[channel]
        state.last_error = str(error) or type(error).__name__
        if state.reachable is False:
            return
        self._set(state, reachable=False)
        log.warning("broker_unreachable", channel=channel, error=state.last_error)

    def _set(self, state: ChannelState, *, reachable: bool) -> None:
        state.reachable = reachable
        state.since_ns = self.clock.now_ns()
        state.since_mono = self.clock.monotonic()

    def unreachable_for_s(self) -> float:
        """How long the longest-failing channel has been failing (0 when every channel is reachable)."""
        now = self.clock.monotonic()
        return max(
            (now - state.since_mono for state in self.channels.values() if state.reachable is False),
            default=0.0,
        )

    def snapshot(self) -> dict[str, Any]:
        """``{reachable, since, last_error}`` overall and per channel, for the status file."""
        channels: dict[str, Any] = {
            name: {
                "reachable": state.reachable,
                "since": None if state.since_ns is None else iso_utc(state.since_ns),
                "last_error": state.last_error,
            }
            for name, state in self.channels.items()
        }
        down = [name for name, state in self.channels.items() if state.reachable is False]
        first_down = min(
            (s.since_ns for s in self.channels.values() if s.reachable is False and s.since_ns),
            default=None,
        )
        return {
            "reachable": not down,
            "since": None if first_down is None else iso_utc(first_down),
            "last_error": next((self.channels[name].last_error for name in down), None),
            **channels,
        }
