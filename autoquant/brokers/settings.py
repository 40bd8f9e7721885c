"""``[broker]`` and ``[paper]``: which broker, how to reach it, the paper exchange and its faults; the
Alpaca keys, which come only from the environment (``APCA_API_KEY_ID``, ``APCA_API_SECRET_KEY``)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from autoquant.domain.settings import Section
from autoquant.domain.values import Money, NonNegative
from autoquant.errors import ConfigError

KEY_ID_VAR = "APCA_API_KEY_ID"
SECRET_VAR = "APCA_API_SECRET_KEY"

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class PaperBrokerSettings(Section):
    """``kind = "paper"``: the embedded paper exchange (the exchange itself is ``[paper]``)."""

    kind: Literal["paper"] = "paper"


class AlpacaBrokerSettings(Section):
    """``kind = "alpaca"``: Alpaca's Trading API, or anything that speaks it (``autoquant paper-server``)."""

    kind: Literal["alpaca"] = "alpaca"
    #: Base URL of the trading API (e.g. a paper-server's); None = Alpaca's paper or live API (``paper``).
    url: str | None = None
    #: The trade_updates websocket; defaults to ``url`` with the ws scheme and path ``/stream``.
    stream_url: str | None = None
    #: With ``kind = "alpaca"`` and no ``url``: Alpaca's paper (true) or live (false) endpoint.
    paper: bool = True
    #: Seconds before a REST call to the broker is abandoned (and a submit becomes UNKNOWN).
    timeout_s: float = Field(default=10.0, gt=0)


#: ``[broker]``: one of the broker kinds, told apart by ``kind``; each kind takes only its own keys.
BrokerSettings = Annotated[PaperBrokerSettings | AlpacaBrokerSettings, Field(discriminator="kind")]


class FaultSettings(Section):
    """Faults the paper server injects on request; each a probability from 0 to 1."""

    drop_response_after_accept: Probability = 0.0
    error_5xx: Probability = 0.0
    rate_limit_429: Probability = 0.0
    duplicate_stream_event: Probability = 0.0
    reorder_stream_events: Probability = 0.0
    slow_response: Probability = 0.0
    slow_response_s: float = Field(default=2.0, ge=0)
    #: Close every trade_updates connection this often (0 = never).
    stream_disconnect_every_s: float = Field(default=0.0, ge=0)


class PaperSettings(Section):
    state_path: Path = Path("var/paper.db")
    starting_cash: Money = Decimal("100000")
    #: Delay between accepting an order and its first fill, in seconds.
    latency_s: float = Field(default=0.05, ge=0)
    slippage_bps: NonNegative = Decimal("1")
    fee_bps: NonNegative = Decimal("0")
    partial_fill_probability: Probability = 0.1
    seed: int = 7
    #: "last_price": orders work against each price point (a bar's close); "next_bar": against the
    #: range of each bar released after they were accepted (market at the next open; limits and stops
    #: when the range reaches them, at the open on a gap). The backtest uses "next_bar".
    fill_rule: Literal["last_price", "next_bar"] = "last_price"
    #: true: stock orders trade only while the NYSE session is open (extended-hours orders 4:00-20:00
    #: New York time), orders sent while it is closed wait for the open, day orders expire at the
    #: close. false (the default): the venue trades around the clock.
    market_hours: bool = False
    faults: FaultSettings = FaultSettings()

    @field_validator("starting_cash")
    @classmethod
    def _cash(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError(f'must be more than 0 (got {value}): the paper account\'s cash, e.g. "100000"')
        return value


class Secrets(BaseModel):
    model_config = ConfigDict(frozen=True)

    key_id: str
    secret_key: str = Field(repr=False)


def alpaca_secrets(environ: dict[str, str] | None = None) -> Secrets:
    env = os.environ if environ is None else environ
    key_id, secret = env.get(KEY_ID_VAR, ""), env.get(SECRET_VAR, "")
    missing = [name for name, value in ((KEY_ID_VAR, key_id), (SECRET_VAR, secret)) if not value]
    if missing:
        raise ConfigError(
            f"missing {' and '.join(missing)} in the environment: export the Alpaca keys "
            "(for paper-server, any pair the server was started with)"
        )
    return Secrets(key_id=key_id, secret_key=secret)
