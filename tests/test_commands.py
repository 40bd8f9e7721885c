"""The command layer shared by the CLI and the HTTP API: validation names the field and writes nothing;
acts append the ledger events and say what happened."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from autoquant.domain.controls import ControlKind
from autoquant.ledger import Ledger
from autoquant.ledger.surface import ManualOrder
from autoquant.operator import commands, manual

STRATEGIES = ["sma-aapl"]


def test_control_validation_names_the_field() -> None:
    """An unknown strategy, an empty reason, a missing reason and a scoped halt are refused by field."""
    cases = [
        (ControlKind.PAUSE, "nope", "x", "strategy"),
        (ControlKind.PAUSE, None, "  ", "--reason"),
        (ControlKind.HALT, None, None, "reason"),
        (ControlKind.RESUME, None, None, "reason"),
        (ControlKind.HALT, "sma-aapl", "x", "strategy"),
    ]
    for kind, scope, reason, field in cases:
        with pytest.raises(commands.CommandInvalid) as refused:
            commands.check_control(
                kind, scope=scope, reason=reason, actor="t", now_ns=1, strategy_ids=STRATEGIES
            )
        assert refused.value.field == field


async def test_acts_append_and_say_what_they_did(tmp_path: Path) -> None:
    """Halt then resume change the trading state; resolve and cancel of unknown ids are 'not found'."""
    async with await Ledger.open(tmp_path / "l.db") as ledger:
        halt = commands.check_control(
            ControlKind.HALT, scope=None, reason="test", actor="t", now_ns=1, strategy_ids=STRATEGIES
        )
        outcome = await commands.apply_control(ledger, halt)
        assert outcome.trading_state == "halted"
        assert outcome.message == "halt recorded for account: trading state halted, paused: nothing"
        resume = commands.check_control(
            ControlKind.RESUME, scope=None, reason="checked", actor="t", now_ns=2, strategy_ids=STRATEGIES
        )
        assert (await commands.apply_control(ledger, resume)).trading_state == "active"
        with pytest.raises(commands.CommandNotFound):
            await commands.resolve(ledger, "inc-none", "done", "t", 3)
        with pytest.raises(commands.CommandNotFound):
            await commands.cancel(ledger, "aq-none", "x", "t", 3)
        assert (await commands.cancel(ledger, commands.CANCEL_ALL, "x", "t", 3)).changed
        await ledger.close()


async def test_a_resume_over_open_incidents_is_a_conflict_unless_forced(tmp_path: Path) -> None:
    """Resume with an open incident is refused (409 over HTTP) naming it, writes nothing; forced, it
    resumes and says what it resumed over."""
    async with await Ledger.open(tmp_path / "l.db") as ledger:
        incident_id, _ = await ledger.open_incident(
            kind="cash_mismatch",
            subject="seeded",
            scope="account",
            message="cash differs by 12.50",
            action="compare the broker's activities with `autoquant fills`",
            details={},
            local_ts_ns=1,
        )
        resume = commands.check_control(
            ControlKind.RESUME, scope=None, reason="checked", actor="t", now_ns=2, strategy_ids=STRATEGIES
        )
        before = await ledger.last_control_seq()
        with pytest.raises(commands.CommandConflict, match=incident_id) as refused:
            await commands.apply_control(ledger, resume)
        assert refused.value.field == "force" and await ledger.last_control_seq() == before
        forced = await commands.apply_control(ledger, resume, force=True)
        assert f"resumed over 1 open incident(s): {incident_id}" in forced.message
        assert await ledger.last_control_seq() > before
        await ledger.close()


async def test_a_manual_order_request_is_idempotent(tmp_path: Path) -> None:
    """The same client order id twice is one request; the id for another order is a conflict."""

    def request(qty: str) -> ManualOrder:
        return manual.check_manual_order(
            client_order_id="m-1",
            strategy_id=None,
            symbol="AAPL",
            side="buy",
            terms=manual.OrderTerms(qty=Decimal(qty)),
            reason="test",
            actor="t",
            now_ns=1,
            strategy_ids=STRATEGIES,
            symbols=["AAPL"],
        )

    async with await Ledger.open(tmp_path / "l.db") as ledger:
        assert (await manual.submit_manual_order(ledger, request("1"))).changed
        again = await manual.submit_manual_order(ledger, request("1"))
        assert not again.changed and again.trading_state == "requested"
        with pytest.raises(commands.CommandConflict):
            await manual.submit_manual_order(ledger, request("2"))
        assert len(await ledger.pending_manual_orders()) == 1
        await ledger.close()
    with pytest.raises(commands.CommandInvalid) as refused:
        manual.check_manual_order(
            client_order_id="aq-x",
            strategy_id=None,
            symbol="AAPL",
            side="buy",
            terms=manual.OrderTerms(qty=Decimal(1)),
            reason="r",
            actor="t",
            now_ns=1,
            strategy_ids=STRATEGIES,
            symbols=["AAPL"],
        )
    assert refused.value.field == "client_order_id"


def test_the_cli_order_command_is_the_apis_manual_order(tmp_path: Path) -> None:
    """`autoquant order` records the same request as orders/submit, and twice is still one."""
    import io

    from autoquant.operator.cli import main

    config = tmp_path / "autoquant.toml"
    config.write_text(f'[ledger]\npath = "{tmp_path}/ledger.db"\n[logging]\npath = "{tmp_path}/a.log"\n')
    argv = ["--config", str(config), "order", "m-9", "--symbol", "AAPL", "--side", "buy", "--qty", "2"]
    out = io.StringIO()
    assert main([*argv, "--reason", "cli test"], out) == 0
    assert "order m-9 requested" in out.getvalue()
    again = io.StringIO()
    assert main([*argv, "--reason", "cli test"], again) == 0
    assert "already requested" in again.getvalue()
    assert main([*argv[:-1], "3", "--reason", "cli test"], io.StringIO()) == 2
