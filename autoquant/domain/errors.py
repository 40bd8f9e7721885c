"""Errors the pure core raises.

They carry enough to explain themselves: an illegal transition names both states and the event, an
overfill names the quantities. The I/O layers translate their own failures into the hierarchy in
``autoquant.errors``; these are the part of it that the domain owns.
"""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain was broken; the input is wrong, not the machine."""


class IllegalTransition(DomainError):
    """An order event that the transition table refuses from the order's current state."""

    def __init__(self, client_order_id: str, state: str, event: str, detail: str = "") -> None:
        self.client_order_id = client_order_id
        self.state = state
        self.event = event
        message = f"order {client_order_id}: event {event!r} is not legal in state {state!r}"
        if detail:
            message = f"{message} ({detail})"
        super().__init__(message)


class Overfill(IllegalTransition):
    """A fill event whose cumulative quantity exceeds the order's quantity."""
