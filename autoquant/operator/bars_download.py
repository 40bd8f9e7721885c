"""``autoquant bars download``: historical bars to the CSV ``autoquant backtest`` reads.

    autoquant bars download --symbols AAPL,MSFT --start 2026-11-02 --end 2026-11-06 \\
        --timeframe 1Min --out bars.csv [--url http://127.0.0.1:8765] [--feed iex]

Bars come through alpaca-py's historical clients (``marketdata.alpaca_history``): from Alpaca's data
API with the account's keys (``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``), or, with ``--url``, from a
``paper-server`` (its synthetic history is deterministic: the same request gives the same bars).
``--start`` and ``--end`` are dates (00:00 UTC) or ISO-8601 times with a timezone; bars opening from
start to end, both included, are kept. The file is written whole or not at all
(``marketdata.bar_csv``). Bad arguments, missing keys and refused requests end in one line on stderr
and exit 2, with no file written.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TextIO

from autoquant.brokers.settings import alpaca_secrets
from autoquant.domain.timeframes import Timeframe, TimeframeError
from autoquant.errors import AutoquantError
from autoquant.runtime.config import Config

EXIT_OK = 0


class BadBarsRequest(AutoquantError):
    """The download's arguments cannot make a request; the message says which and how to fix it."""


def add_bars_arguments(bars: argparse.ArgumentParser) -> None:
    """``download`` (and its options) under the CLI's ``bars`` command."""
    actions = bars.add_subparsers(dest="bars_command", required=True, metavar="ACTION")
    download = actions.add_parser("download", help="fetch bars from Alpaca or a paper-server into a CSV")
    download.add_argument("--symbols", required=True, help="comma-separated, e.g. AAPL,MSFT,BTC/USD")
    download.add_argument("--start", required=True, help="date (00:00 UTC) or ISO-8601 time with a zone")
    download.add_argument("--end", required=True, help="date (00:00 UTC) or ISO-8601 time with a zone")
    download.add_argument(
        "--timeframe", required=True, help="Alpaca's: 1Min, 5Min, 1Hour, 1Day, 1Week, 1Month"
    )
    download.add_argument("--out", required=True, type=Path, help="the CSV to write")
    download.add_argument(
        "--url", default=None, help="a paper-server's base URL (default: Alpaca's data API)"
    )
    download.add_argument("--feed", choices=("iex", "sip"), default=None, help="Alpaca's stock feed")
    download.set_defaults(handler=bars_download)


def parse_moment(text: str, name: str) -> dt.datetime:
    """A date (its 00:00 UTC) or an ISO-8601 time with a timezone."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadBarsRequest(f"--{name} {text!r} is not a date (2026-11-02) nor an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise BadBarsRequest(f"--{name} {text!r} has no timezone: add Z or an offset such as +00:00")
    return moment.astimezone(dt.UTC)


def bars_download(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    symbols = list(dict.fromkeys(s.strip() for s in args.symbols.split(",") if s.strip()))
    if not symbols:
        raise BadBarsRequest("--symbols names no symbol: give e.g. AAPL,MSFT")
    start, end = parse_moment(args.start, "start"), parse_moment(args.end, "end")
    if end <= start:
        raise BadBarsRequest(f"--end ({end.isoformat()}) is not after --start ({start.isoformat()})")
    try:
        timeframe = Timeframe.parse(args.timeframe)
    except TimeframeError as error:
        raise BadBarsRequest(f"--timeframe: {error}") from None
    target: Path = args.out
    if target.is_dir() or not target.parent.is_dir():
        raise BadBarsRequest(f"--out {target}: name a file in an existing directory")
    keys = alpaca_secrets()
    # alpaca-py's data clients bring pandas: loaded only when bars are asked for, not on every command.
    from autoquant.marketdata.alpaca_history import fetch_bars
    from autoquant.marketdata.bar_csv import write_bars_csv

    found = fetch_bars(
        symbols,
        timeframe,
        start,
        end,
        key_id=keys.key_id,
        secret_key=keys.secret_key,
        url=args.url,
        feed=args.feed,
    )
    write_bars_csv(target, found)
    counts = {s: sum(1 for h in found if h.bar.symbol == s) for s in symbols}
    summary = ", ".join(f"{s} {n}" for s, n in counts.items())
    out.write(f"wrote {len(found)} {timeframe} bars to {target} ({summary})\n")
    return EXIT_OK
