"""What ``--out DIR`` holds beside the ledger: report.json, trades.csv, report.html and equity.png.

The chart is drawn with matplotlib's Agg backend (no display, no browser); the HTML page is plain,
self-contained and links the chart and the CSV.
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path
from typing import Any

from autoquant.domain.values import iso_utc
from autoquant.research.report import EquityCurve

TRADE_COLUMNS = (
    "strategy_id",
    "symbol",
    "side",
    "qty",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "pnl",
    "fees",
)

#: The files a backtest writes into --out (and may replace with --force).
OUTPUTS = (
    "ledger.db",
    "ledger.db-wal",
    "ledger.db-shm",
    "ledger.db.lock",
    "paper.db",
    "paper.db-wal",
    "paper.db-shm",
    "paper.db.lock",
    "report.json",
    "report.html",
    "trades.csv",
    "equity.png",
    "backtest.log",
)


def write_all(out: Path, report: dict[str, Any], curve: EquityCurve) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    with (out / "trades.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=TRADE_COLUMNS)
        writer.writeheader()
        writer.writerows(report["trades"])
    chart(out / "equity.png", curve)
    (out / "report.html").write_text(page(report))


def chart(path: Path, curve: EquityCurve) -> None:
    """Equity above, drawdown below, against bar time."""
    import matplotlib

    matplotlib.use("Agg")
    from datetime import UTC, datetime

    import matplotlib.pyplot as plt

    times = [datetime.fromtimestamp(ts / 1e9, tz=UTC) for ts, _, _ in curve.points]
    equity = [float(value) for _, value, _ in curve.points]
    drawdown = [-float(value) for _, _, value in curve.points]
    figure, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(10, 6), gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot(times, equity, color="tab:blue", linewidth=1)
    top.set_ylabel("equity")
    top.grid(alpha=0.3)
    bottom.fill_between(times, drawdown, 0, color="tab:red", alpha=0.4)
    bottom.set_ylabel("drawdown")
    bottom.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    # No timestamp in the PNG's metadata: the same run draws the same bytes.
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)


def page(report: dict[str, Any]) -> str:
    """A self-contained HTML summary with the trades table."""
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(trade[c]))}</td>" for c in TRADE_COLUMNS) + "</tr>"
        for trade in report["trades"]
    )
    decisions = "".join(
        f"<li>{html.escape(action)}: "
        + ", ".join(f"{html.escape(reason)} {count}" for reason, count in reasons.items())
        + "</li>"
        for action, reasons in report["decisions"].items()
    )
    facts = [
        ("bars", report["bars"]),
        ("trades", len(report["trades"])),
        ("realized P&amp;L", report["total_pnl"]),
        ("fees", report["fees"]),
        ("final equity", report["equity_final"]),
        ("max drawdown", report["max_drawdown"]),
        ("Sharpe", report["sharpe"]),
        ("inputs sha256", report["inputs_sha256"]),
    ]
    table = "".join(f"<tr><th>{name}</th><td>{html.escape(str(value))}</td></tr>" for name, value in facts)
    header = "".join(f"<th>{c}</th>" for c in TRADE_COLUMNS)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>autoquant backtest</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}</style></head>
<body><h1>Backtest</h1>
<table>{table}</table>
<p>Fill rule: {html.escape(report["fill_rule"])}</p>
<h2>Decisions</h2><ul>{decisions}</ul>
<h2>Equity and drawdown</h2><img src="equity.png" alt="equity and drawdown">
<h2>Trades</h2><p><a href="trades.csv">trades.csv</a>; every decision is in ledger.db
(<code>autoquant trace ID --ledger ledger.db</code>).</p>
<table><tr>{header}</tr>
{rows}
</table></body></html>
"""


def one_line(report: dict[str, Any], first_ns: int | None, last_ns: int | None) -> str:
    span = (
        "" if first_ns is None or last_ns is None else f" {iso_utc(first_ns)[:10]}..{iso_utc(last_ns)[:10]}"
    )
    return (
        f"backtest: {report['bars']} bars{span}, {len(report['trades'])} trades, "
        f"realized P&L {report['total_pnl']}, fees {report['fees']}, final equity {report['equity_final']}, "
        f"max drawdown {report['max_drawdown']}, Sharpe {report['sharpe']}, "
        f"{report['bars_per_s']} bars/s"
    )
