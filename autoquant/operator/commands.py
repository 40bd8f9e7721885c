"""The operator's acts, one set under both faces (freqtrade's ``rpc.py`` pattern): the CLI and the HTTP API
call these, so both validate the same way, append the same ledger events and say the same words.

Each act is two steps: ``check_*`` validates the request without touching the ledger (bad input raises
``CommandInvalid`` naming the field, and nothing is written), then the async act appends to an open
``Ledger`` and returns an ``Outcome`` whose ``message`` is what the CLI prints and the API returns.
A request the ledger's state refuses raises ``CommandConflict`` (HTTP 409) or ``CommandNotFound`` (404);
all three are ``AutoquantError``s, so the CLI prints their one line and exits 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from autoquant.domain.controls import ACCOUNT, Control, ControlKind
from autoquant.domain.ids import replacement_client_order_id
from autoquant.domain.values import OrderType
from autoquant.errors import AutoquantError, LedgerError
from autoquant.ledger import Ledger
from autoquant.operator import resume_check

#: The scopes a pause or resume may name besides a strategy id.
CANCEL_ALL = "*"


class CommandError(AutoquantError):
    """An operator act was refused; ``field`` names the input at fault, where there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class CommandInvalid(CommandError):
    """The request itself is wrong (HTTP 422): nothing was written."""


class CommandNotFound(CommandError):
    """The request names something the ledger does not have (HTTP 404)."""


class CommandConflict(CommandError):
    """The ledger's state refuses the request (HTTP 409)."""


@dataclass(frozen=True)
class Outcome:
    """What an act did: ``message`` is the sentence both faces show."""

    message: str
    changed: bool = True
    trading_state: str | None = None
    paused: list[str] = field(default_factory=list)


def _reason(reason: str | None, flag: str, what: str) -> str | None:
    if reason is not None and not reason.strip():
        raise CommandInvalid(f"{flag} is empty: say {what} (it is recorded in the ledger)", field=flag)
    return None if reason is None else reason.strip()


def reason_given(reason: str, flag: str) -> str:
    """A required reason, stripped; an empty one is refused naming ``flag``."""
    given = _reason(reason, flag, "why")
    assert given is not None
    return given


def check_control(
    kind: ControlKind,
    *,
    scope: str | None,
    reason: str | None,
    actor: str,
    now_ns: int,
    strategy_ids: Iterable[str],
) -> Control:
    """A pause, resume, halt or reduce, validated; nothing is written."""
    scope = scope or ACCOUNT
    known = sorted(strategy_ids)
    if scope != ACCOUNT and kind in (ControlKind.HALT, ControlKind.REDUCE):
        raise CommandInvalid(f"{kind.value} applies to the whole account, not a strategy", field="strategy")
    if scope != ACCOUNT and scope not in known:
        raise CommandInvalid(
            f"--strategy {scope!r} is not a configured strategy (configured: {', '.join(known) or 'none'})",
            field="strategy",
        )
    given = _reason(reason, "--reason", "why")
    if given is None:
        raise CommandInvalid(f"--reason is required for {kind.value}: say why", field="reason")
    return Control(kind=kind, scope=scope, reason=given, actor=actor, local_ts_ns=now_ns)


async def apply_control(ledger: Ledger, control: Control, *, force: bool = False) -> Outcome:
    """Append a checked control; the running daemon obeys within a second. A resume over open incidents
    is refused (``CommandConflict`` listing them) unless ``force``, and then says which it resumed over."""
    over = []
    if control.kind is ControlKind.RESUME:
        over = resume_check.blocking(await ledger.incidents(open_only=True), control.scope)
        if over and not force:
            raise CommandConflict(resume_check.refusal(over, control.scope), field="force")
    await ledger.append_control(control)
    await ledger.last_control_seq()  # fold in anything another process wrote meanwhile
    state = await ledger.control_state()
    paused = sorted(state.paused)
    resumed_over = (
        f"; resumed over {len(over)} open incident(s): {resume_check.describe(over)}" if over else ""
    )
    return Outcome(
        message=(
            f"{control.kind.value} recorded for {control.scope}: trading state "
            f"{state.trading_state.value}, paused: {', '.join(paused) or 'nothing'}{resumed_over}"
        ),
        trading_state=state.trading_state.value,
        paused=paused,
    )


def check_resolve(incident_id: str, note: str) -> tuple[str, str]:
    if not incident_id.strip():
        raise CommandInvalid(
            "the incident id is empty: `autoquant incidents` lists them", field="incident_id"
        )
    if not note.strip():
        raise CommandInvalid(
            "--note is empty: say what was done (it is recorded in the ledger)", field="note"
        )
    return incident_id.strip(), note.strip()


async def resolve(ledger: Ledger, incident_id: str, note: str, actor: str, now_ns: int) -> Outcome:
    """Record that an operator dealt with an incident; pauses and halts stay until ``resume``."""
    incident_id, note = check_resolve(incident_id, note)
    try:
        resolved = await ledger.resolve_incident(incident_id, actor, note, now_ns)
    except LedgerError as error:
        if str(error).startswith("no incident"):
            raise CommandNotFound(str(error), field="incident_id") from None
        raise
    if not resolved:
        return Outcome(f"incident {incident_id} was already resolved; nothing changed", changed=False)
    return Outcome(f"incident {incident_id} resolved; pauses and halts stay until `autoquant resume`")


def check_cancel(client_order_id: str | None, cancel_all: bool, reason: str) -> tuple[str, str]:
    """The cancel target (a client order id, or ``*`` for every open order) and the reason."""
    if (client_order_id is None) == (not cancel_all):
        raise CommandInvalid("name one CLIENT_ORDER_ID or pass --all (not both)", field="client_order_id")
    given = _reason(reason, "--reason", "why")
    assert given is not None
    return (CANCEL_ALL if cancel_all else str(client_order_id)), given


async def cancel(ledger: Ledger, target: str, reason: str, actor: str, now_ns: int) -> Outcome:
    """Ask the running daemon to cancel one order or all open orders (it obeys in any trading state)."""
    if target != CANCEL_ALL:
        order = await ledger.get_order(target)
        if order is None:
            raise CommandNotFound(
                f"no order {target} in the ledger: `autoquant orders --open` lists them",
                field="client_order_id",
            )
        if order.status.is_terminal:
            raise CommandConflict(
                f"order {target} is already {order.status.value}: there is nothing to cancel",
                field="client_order_id",
            )
    await ledger.request_cancel(target, reason, actor, now_ns)
    what = "every open order" if target == CANCEL_ALL else target
    return Outcome(f"cancel of {what} requested; the running daemon carries it out within a second")


@dataclass(frozen=True)
class ReplaceTerms:
    """A replace request, checked: the order and its new terms (None: unchanged)."""

    client_order_id: str
    qty: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    reason: str
    #: A trailing stop's new trail, in the order's own unit: dollars for a ``trail_price`` order,
    #: percent for a ``trail_percent`` one (Alpaca's replace has one ``trail`` field for both).
    trail: Decimal | None = None

    def params(self) -> dict[str, str]:
        given = {
            "qty": self.qty,
            "limit_price": self.limit_price,
            "stop_price": self.stop_price,
            "trail": self.trail,
        }
        return {name: str(value) for name, value in given.items() if value is not None}


def _positive(value: Decimal | None, name: str) -> Decimal | None:
    if value is None:
        return None
    if not value.is_finite() or value <= 0:
        raise CommandInvalid(f"{name} must be a positive number, got {value}", field=name)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -9:
        raise CommandInvalid(f"{name} has more than 9 decimal places: give one a broker takes", field=name)
    return value


def check_replace(
    client_order_id: str,
    *,
    qty: Decimal | None,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    reason: str,
    trail: Decimal | None = None,
) -> ReplaceTerms:
    """A replace request, validated without the ledger: an order id, at least one new term, a reason."""
    if not client_order_id.strip():
        raise CommandInvalid(
            "the client order id is empty: `autoquant orders --open` lists them", "client_order_id"
        )
    if qty is None and limit_price is None and stop_price is None and trail is None:
        raise CommandInvalid(
            "give at least one of --qty, --limit-price, --stop-price, --trail: the new terms", "qty"
        )
    given = _reason(reason, "--reason", "why")
    assert given is not None
    return ReplaceTerms(
        client_order_id.strip(),
        _positive(qty, "qty"),
        _positive(limit_price, "limit_price"),
        _positive(stop_price, "stop_price"),
        given,
        _positive(trail, "trail"),
    )


async def replace(ledger: Ledger, terms: ReplaceTerms, actor: str, now_ns: int) -> Outcome:
    """Ask the running daemon to replace an open order by new terms (``PATCH /v2/orders/{id}`` at the
    broker): the replacement is a new order on the same decision, the old one ends REPLACED."""
    target = terms.client_order_id
    order = await ledger.get_order(target)
    if order is None:
        raise CommandNotFound(
            f"no order {target} in the ledger: `autoquant orders --open` lists them", field="client_order_id"
        )
    if order.status.is_terminal:
        raise CommandConflict(
            f"order {target} is already {order.status.value}: there is nothing to replace", "client_order_id"
        )
    if order.broker_order_id is None:
        raise CommandConflict(
            f"order {target} is {order.status.value}: the broker has not acknowledged it yet; try again "
            "in a moment",
            field="client_order_id",
        )
    if terms.limit_price is not None and not order.order_type.needs_limit_price:
        raise CommandInvalid(
            f"order {target} is a {order.order_type.value} order: it has no limit price", "limit_price"
        )
    if terms.stop_price is not None and not order.order_type.needs_stop_price:
        raise CommandInvalid(
            f"order {target} is a {order.order_type.value} order: it has no stop price", "stop_price"
        )
    if terms.trail is not None and order.order_type is not OrderType.TRAILING_STOP:
        raise CommandInvalid(
            f"order {target} is a {order.order_type.value} order: only a trailing stop has a trail", "trail"
        )
    if terms.qty is not None and terms.qty <= order.filled_qty:
        raise CommandInvalid(
            f"qty {terms.qty} is not more than the {order.filled_qty} already filled: cancel the order "
            "instead",
            field="qty",
        )
    seq = await ledger.request_at_broker("replace", target, terms.params(), terms.reason, actor, now_ns)
    new_id = replacement_client_order_id(target, seq)
    return Outcome(
        f"replace of {target} requested; the running daemon sends it within a second as order {new_id} "
        f"(`autoquant trace {new_id}` follows it)"
    )


async def flatten(ledger: Ledger, reason: str, actor: str, now_ns: int) -> Outcome:
    """Ask the running daemon to cancel every open order and close every position at the broker."""
    given = _reason(reason, "--reason", "why")
    assert given is not None
    await ledger.request_at_broker("flatten", CANCEL_ALL, {}, given, actor, now_ns)
    return Outcome(
        "flatten requested: the running daemon cancels every open order and closes every position within "
        "a second (`autoquant orders` and `autoquant positions` show it)"
    )
