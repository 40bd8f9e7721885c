"""Human output for the inspection commands: tables whose columns fit, and the status page.

Machines get ``--json`` (the rows unchanged); people get the columns that matter, times to the
second, and, on a terminal, the widest columns cut with an ellipsis until the line fits.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from typing import Any, TextIO

from autoquant.operator.text import amount, money, order_size, safe

Row = dict[str, Any]

#: The columns a person reads, per command (JSON carries every field).
COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": (
        "client_order_id",
        "broker_order_id",
        "strategy_id",
        "symbol",
        "side",
        "qty",
        "filled_qty",
        "avg_fill_price",
        "status",
        "created",
        "updated",
    ),
    "fills": (
        "execution_id",
        "client_order_id",
        "symbol",
        "side",
        "qty",
        "price",
        "fee",
        "broker_time",
        "local_time",
    ),
    "positions": (
        "strategy_id",
        "symbol",
        "qty",
        "avg_price",
        "realized_pnl",
        "unrealized_pnl",
        "mark_price",
        "mark_price_source",
        "fees",
    ),
    "incidents": ("incident_id", "state", "opened", "scope", "message", "action"),
}
MIN_WIDTH = 8


def write_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, default=str) + "\n")


def cell(value: Any) -> str:
    """A value as a person reads it: ISO times to the second, nothing for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = safe(value) if not isinstance(value, dict | list) else json.dumps(value, default=str)
    if len(text) >= 20 and text[4] == "-" and text[10] == "T" and text.endswith("Z"):
        return text[:10] + " " + text[11:19]
    return text


def terminal_width(out: TextIO) -> int | None:
    """The terminal's width when writing to one; None (no cutting) for pipes and files."""
    isatty = getattr(out, "isatty", None)
    if isatty is None or not isatty():
        return None
    return shutil.get_terminal_size((160, 24)).columns


def table(rows: Sequence[Row], columns: Sequence[str], width: int | None = None) -> list[str]:
    """Aligned lines with a header; columns cut (widest first) until a line fits ``width``."""
    if not rows:
        return ["(none)"]
    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    if width is not None:
        while sum(widths) + 2 * (len(widths) - 1) > width:
            widest = max(range(len(widths)), key=lambda i: widths[i])
            if widths[widest] <= MIN_WIDTH:
                break
            widths[widest] -= 1

    def fit(text: str, size: int) -> str:
        return text if len(text) <= size else text[: size - 1] + "…"

    def join(values: Sequence[str]) -> str:
        return "  ".join(fit(v, w).ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return [join(list(columns)), *(join(line) for line in cells)]


def write_table(rows: Sequence[Row], command: str, out: TextIO) -> None:
    columns = COLUMNS.get(command) or (tuple(rows[0]) if rows else ())
    if command == "orders":
        # A notional order's size is its dollars until it has a quantity.
        rows = [row | {"qty": order_size(row["qty"], row.get("notional"))} for row in rows]
    for line in table(rows, columns, terminal_width(out)):
        out.write(line + "\n")


def status_lines(status: Row) -> list[str]:
    """``autoquant status`` for a person: one section per concern."""
    daemon = status["daemon"]
    lines = [f"daemon:          {daemon['note']}"]
    if daemon["running"]:
        lines[-1] += f", started {cell(daemon['started'])}, healthy: {cell(daemon['healthy'])}"
        if daemon["unhealthy"]:
            lines[-1] += " (" + "; ".join(daemon["unhealthy"]) + ")"
        lines.append(f"broker:          {broker_line(daemon['broker'])}")
    if daemon.get("log_records_dropped"):
        lines.append(
            f"  logging: {daemon['log_records_dropped']} log record(s) dropped (the writer fell behind;"
            " the ledger is unaffected)"
        )
    for worker in daemon["workers"]:
        lines.append(
            f"  worker {worker['name']:<15} {worker['state']:<10} last heartbeat"
            f" {cell(worker['last_heartbeat'])}  restarts {worker['restarts']}"
        )
    state = status["trading_state"].upper()
    if status["trading_state_reason"]:
        state += (
            f" since {cell(status['trading_state_since'])} by {status['trading_state_actor']}:"
            f" {safe(status['trading_state_reason'])}"
        )
    if daemon["running"] and daemon.get("ledger_disk_full"):
        state = (
            f"HALTED for lack of space (the daemon reserves no order while the ledger cannot be written;"
            f" the ledger still says {state}): {daemon['ledger_disk_full']}"
        )
    lines.append(f"trading state:   {state}")
    if not status["paused"]:
        lines.append("paused:          nothing")
    for flag in status["paused"]:
        since = cell(flag["since"])
        lines.append(
            f"paused:          {flag['scope']} since {since} by {safe(flag['actor'])}: {safe(flag['reason'])}"
        )
    last = status["last_reconciliation"]
    if last is None:
        lines.append("reconciliation:  never run")
    else:
        line = f"reconciliation:  {last['result']} ({last['trigger']}, finished {cell(last['finished'])})"
        if last["result"] != "clean":  # the details matter only when something did not match
            line += " " + json.dumps(last["summary"], default=str)
        lines.append(line)
    lines.append(f"open incidents:  {len(status['open_incidents']) or 'none'}")
    for incident in status["open_incidents"]:
        lines.append(f"  {incident['incident_id']} [{incident['scope']}] {safe(incident['message'])}")
        lines.append(f"      what to do: {safe(incident['action'])}")
    lines.append(f"open orders:     {status['open_orders']}")
    lines.extend(money_lines(status.get("account"), status["pnl_today"]))
    lines.append("positions:")
    lines.extend("  " + line for line in table(human_positions(status["positions"]), COLUMNS["positions"]))
    return lines


def broker_line(broker: Row | None) -> str:
    """The broker's reachability in one line: REST and the order-update stream."""
    if not broker:
        return "unknown"
    if broker["reachable"]:
        return "reachable (REST and order updates)"
    parts = []
    for key, label in (("rest", "REST"), ("stream", "order updates")):
        channel = broker.get(key)
        if isinstance(channel, dict) and channel.get("reachable") is False:
            parts.append(f"{label} since {cell(channel['since'])}: {channel['last_error']}")
    return "UNREACHABLE: " + "; ".join(parts)


def money_lines(account: Row | None, pnl: Row) -> list[str]:
    """The account's cash, equity and buying power, and today's P&L, to the cent."""
    if account is None:
        lines = ["account:         not read yet (the daemon polls the broker's account every few seconds)"]
    else:
        lines = [
            f"account:         cash {money(account['cash'])}, equity {money(account['equity'])},"
            f" buying power {money(account['buying_power'])} (broker, as of {cell(account['as_of'])})"
        ]
    lines.append(
        f"P&L today:       realized {money(pnl['realized'])}, fees {money(pnl['fees'])},"
        f" unrealized {money(pnl['unrealized'])}"
        f" (marked at the {pnl['mark_price_source'].replace('_', ' ')}; since {cell(pnl['since'])})"
    )
    return lines


def human_positions(rows: Sequence[Row]) -> list[Row]:
    """Position rows with amounts quantized for reading (JSON keeps them exact)."""
    keys = ("qty", "avg_price", "mark_price")
    cents = ("realized_pnl", "unrealized_pnl", "fees")
    return [
        {
            **row,
            **{k: amount(row[k]) for k in keys if row.get(k) is not None},
            **{k: money(row[k]) for k in cents if row.get(k) is not None},
        }
        for row in rows
    ]


def positions_lines(value: Row, terminal: int | None = None) -> list[str]:
    """``autoquant positions`` for a person: the table, then the account and today's P&L."""
    rows = table(human_positions(value["rows"]), COLUMNS["positions"], terminal)
    return [*rows, *money_lines(value["account"], value["pnl_today"])]
