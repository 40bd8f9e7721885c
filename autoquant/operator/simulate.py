"""``orders/simulate``: the risk gate on a proposed order, with no side effect — a verdict per check.

It runs the same pure ``domain.risk.check`` the daemon runs, on a snapshot rebuilt from the ledger alone
(it may run while the daemon is down): positions, open orders, today's equity, the last minute's
submissions and the controls as recorded; each symbol's price and data age from the newest decision
that saw it (the close it used; else the last fill price). The daemon's in-memory market state can be
a bar newer than that, so a simulation is an estimate of the verdict, never a promise.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from autoquant.domain.decisions import OrderIntent
from autoquant.domain.order_terms import ORDER_TERMS
from autoquant.domain.orders import Order
from autoquant.domain.risk import RiskSnapshot, check, intent_qty, notional_basis
from autoquant.domain.risk_models import open_exposures, open_quantities
from autoquant.domain.values import from_ns, utc_day_start_ns
from autoquant.ledger import LedgerReader
from autoquant.runtime.config import Config


async def ledger_snapshot(reader: LedgerReader, config: Config, now_ns: int) -> RiskSnapshot:
    book = await reader.book(utc_day_start_ns(now_ns))
    fill_prices = await reader.last_fill_prices()
    prices: dict[str, Decimal] = {}
    ages: dict[str, int] = {}
    for symbol in config.marketdata.symbols:
        newest = await reader.decisions(symbol=symbol, limit=1)
        if newest and newest[0].close is not None:
            prices[symbol] = Decimal(newest[0].close)
            ages[symbol] = max(0, now_ns - newest[0].data_time_ns)  # data time = the bar's close
        elif symbol in fill_prices:
            prices[symbol] = fill_prices[symbol]
    open_buys, open_sells = open_quantities(open_exposures(book.open_orders, prices))
    start, peak, current = book.equity if book.equity is not None else (Decimal(0),) * 3
    return RiskSnapshot(
        now_ns=now_ns,
        positions=book.account_positions(),
        last_prices=prices,
        open_buys=open_buys,
        open_sells=open_sells,
        start_equity=start,
        peak_equity=peak,
        equity=current,
        recent_order_ns=tuple(await reader.submissions_since(now_ns - 60_000_000_000)),
        data_age_ns=ages,
        controls=await reader.control_state(),
    )


def basis(intent: OrderIntent, last: Decimal | None) -> dict[str, str | None]:
    """The price the gate counts ``intent`` at (``domain.risk.notional_basis``), where it comes from,
    and the shares and dollars that make."""
    price = notional_basis(intent, last)
    if intent.limit_price is not None:
        source = "limit_price"
    elif intent.stop_price is not None:
        source = "stop_price"
    elif price is not None and price != last:
        source = "last price + " + ("trail_price" if intent.trail_price is not None else "trail_percent")
    else:
        source = "last price" if last is not None else "no last price"
    qty = intent_qty(intent, last)
    dollars = intent.notional if intent.notional is not None else None if price is None else qty * price
    return {
        "price": None if price is None else format(price, "f"),
        "source": source,
        "qty": None if intent.notional is not None and not last else format(qty, "f"),
        "notional": None if dollars is None else format(dollars, "f"),
    }


async def simulate(reader: LedgerReader, config: Config, order: Order) -> dict[str, Any]:
    """The verdict on a proposed order (checked by ``operator.manual.check_order_terms``)."""
    now = time.time_ns()
    terms = order.model_dump(include=set(ORDER_TERMS))
    intent = OrderIntent(
        reason="simulated by operator", decision_id="simulation", data_time=from_ns(now), **terms
    )
    snapshot = await ledger_snapshot(reader, config, now)
    verdict = check(intent, snapshot, config.risk)
    return verdict.as_dict() | {
        "basis": basis(intent, snapshot.last_prices.get(intent.symbol)),
        "prices": {k: format(v, "f") for k, v in snapshot.last_prices.items()},
        "data_age_s": {k: v / 1e9 for k, v in snapshot.data_age_ns.items()},
    }
