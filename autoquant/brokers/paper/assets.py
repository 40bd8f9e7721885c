"""The assets the paper exchange trades, as Alpaca's ``Assets`` objects (``GET /v2/assets``).

Only the symbols the exchange prices are assets here, each active and tradable. What the venue can
do sets the flags: fractional quantities are accepted (``fractionable``); short selling is not
(``shortable`` and ``easy_to_borrow`` false, ``hard_to_borrow``); nothing is bought on margin.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from autoquant.brokers.paper.alpaca_json import asset_class, asset_id


def asset_json(symbol: str) -> dict[str, Any]:
    crypto = asset_class(symbol) == "crypto"
    found: dict[str, Any] = {
        "id": asset_id(symbol),
        "class": asset_class(symbol),
        "exchange": "CRYPTO" if crypto else "NASDAQ",
        "symbol": symbol,
        "name": f"{symbol} (paper exchange)",
        "status": "active",
        "tradable": True,
        "marginable": False,
        "maintenance_margin_requirement": 100,
        "shortable": False,
        "easy_to_borrow": False,
        "fractionable": True,
        "attributes": [],
    }
    if crypto:
        found.update(min_order_size="0.000000001", min_trade_increment="0.000000001", price_increment="0.01")
    else:
        found["borrow_status"] = "hard_to_borrow"
    return found


def find_asset(symbols: Iterable[str], symbol_or_asset_id: str) -> str | None:
    """The symbol named by ``symbol_or_asset_id``: a symbol (``BTC/USD`` or ``BTCUSD``) or an asset id."""
    wanted = symbol_or_asset_id.strip()
    for symbol in sorted(symbols):
        if wanted in (symbol, symbol.replace("/", ""), asset_id(symbol)):
            return symbol
    return None
