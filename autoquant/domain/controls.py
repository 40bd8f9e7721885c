"""Trading state and pause flags: operator and kill-switch controls folded into current state.

Controls are ledger events so they survive restarts; nothing here resumes by itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

ACCOUNT = "account"


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


class ControlKind(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    HALT = "halt"
    REDUCE = "reduce"


class Control(BaseModel):
    """One operator or kill-switch act. ``scope`` is ``account`` or a strategy id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ControlKind
    scope: str = ACCOUNT
    reason: str
    actor: str
    local_ts_ns: int

    def model_post_init(self, __context: object) -> None:
        if self.kind in (ControlKind.HALT, ControlKind.REDUCE) and self.scope != ACCOUNT:
            raise ValueError(f"{self.kind.value} applies to the whole account, not a strategy")
        if not self.reason.strip():
            raise ValueError("reason must not be empty")


class PauseFlag(BaseModel):
    model_config = ConfigDict(frozen=True)

    scope: str
    reason: str
    actor: str
    since_ns: int


class ControlState(BaseModel):
    """Current trading state and pause flags, with who set them and why."""

    model_config = ConfigDict(frozen=True)

    trading_state: TradingState = TradingState.ACTIVE
    state_reason: str = ""
    state_actor: str = ""
    state_since_ns: int = 0
    paused: dict[str, PauseFlag] = {}

    def is_paused(self, strategy_id: str) -> bool:
        return ACCOUNT in self.paused or strategy_id in self.paused

    def pause_reason(self, strategy_id: str) -> str | None:
        flag = self.paused.get(ACCOUNT) or self.paused.get(strategy_id)
        return None if flag is None else flag.reason


def apply_control(state: ControlState, control: Control) -> ControlState:
    paused = dict(state.paused)
    if control.kind is ControlKind.PAUSE:
        paused[control.scope] = PauseFlag(
            scope=control.scope,
            reason=control.reason,
            actor=control.actor,
            since_ns=control.local_ts_ns,
        )
        return state.model_copy(update={"paused": paused})
    if control.kind is ControlKind.RESUME:
        paused.pop(control.scope, None)
        update: dict[str, object] = {"paused": paused}
        if control.scope == ACCOUNT:
            update |= _state(TradingState.ACTIVE, control)
        return state.model_copy(update=update)
    target = TradingState.HALTED if control.kind is ControlKind.HALT else TradingState.REDUCING
    if state.trading_state is TradingState.HALTED and target is TradingState.REDUCING:
        return state  # reducing is looser than halted; only an operator's resume lifts a halt
    return state.model_copy(update=_state(target, control))


def _state(target: TradingState, control: Control) -> dict[str, object]:
    return {
        "trading_state": target,
        "state_reason": control.reason,
        "state_actor": control.actor,
        "state_since_ns": control.local_ts_ns,
    }


def fold_controls(controls: Iterable[Control]) -> ControlState:
    state = ControlState()
    for control in controls:
        state = apply_control(state, control)
    return state
