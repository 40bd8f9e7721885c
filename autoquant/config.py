"""Configuration: one TOML file, validated, every key defaulted, unknown keys refused by name.

Where it comes from: ``--config PATH``, else ``$AUTOQUANT_CONFIG``, else ``config/autoquant.toml``
if it exists, else the built-in defaults (the embedded paper exchange on synthetic bars). Secrets
never come from the file: the Alpaca keys are read from ``APCA_API_KEY_ID`` and
``APCA_API_SECRET_KEY`` in the environment.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autoquant.domain.risk import RiskLimits
from autoquant.domain.values import Identifier, Money, NonNegative, Quantity, Symbol
from autoquant.errors import ConfigError
from autoquant.logs.settings import LoggingSettings as LoggingSettings

DEFAULT_PATH = Path("config/autoquant.toml")
ENV_VAR = "AUTOQUANT_CONFIG"
KEY_ID_VAR = "APCA_API_KEY_ID"
SECRET_VAR = "APCA_API_SECRET_KEY"

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LedgerSettings(_Section):
    path: Path = Path("var/autoquant.db")


class BrokerSettings(_Section):
    kind: Literal["paper", "alpaca"] = "paper"
    #: Base URL of the trading API (becomes alpaca-py's ``url_override``); None = Alpaca's paper API.
    url: str | None = None
    #: The trade_updates websocket; defaults to ``url`` with the ws scheme and path ``/stream``.
    stream_url: str | None = None
    #: With ``kind = "alpaca"`` and no ``url``: Alpaca's paper (true) or live (false) endpoint.
    paper: bool = True
    #: Seconds before a REST call to the broker is abandoned (and a submit becomes UNKNOWN).
    timeout_s: float = Field(default=10.0, gt=0)


class FaultSettings(_Section):
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


class PaperSettings(_Section):
    state_path: Path = Path("var/paper.db")
    starting_cash: Money = Decimal("100000")
    #: Delay between accepting an order and its first fill, in seconds.
    latency_s: float = Field(default=0.05, ge=0)
    slippage_bps: NonNegative = Decimal("1")
    fee_bps: NonNegative = Decimal("0")
    partial_fill_probability: Probability = 0.1
    seed: int = 7
    faults: FaultSettings = FaultSettings()


class MarketDataSettings(_Section):
    source: Literal["synthetic", "csv", "alpaca"] = "synthetic"
    symbols: list[Symbol] = ["AAPL", "MSFT"]
    bar_seconds: float = Field(default=1.0, gt=0)
    csv_path: Path | None = None
    #: Market-data websocket base (default Alpaca's), e.g. a paper-server's ``ws://host:port``: stocks use
    #: ``{url}/v2/{feed}``, crypto ``{url}/v1beta3/crypto/us``; one stream's full URL is accepted too.
    url: str | None = None
    feed: Literal["iex", "sip"] = "iex"
    seed: int = 42
    #: How many bars out of order the reorder buffer absorbs before a gap is an incident.
    reorder_window: int = Field(default=4, ge=0)

    @model_validator(mode="after")
    def _csv_needs_path(self) -> MarketDataSettings:
        if self.source == "csv" and self.csv_path is None:
            raise ValueError("csv_path is required when source = 'csv'")
        if not self.symbols:
            raise ValueError("symbols must name at least one symbol")
        return self


class StrategySettings(_Section):
    id: Identifier
    kind: Literal["sma_cross"]
    symbol: Symbol
    fast: int = Field(gt=0)
    slow: int = Field(gt=0)
    qty: Quantity

    @model_validator(mode="after")
    def _windows(self) -> StrategySettings:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be less than slow ({self.slow})")
        return self


class RiskSettings(RiskLimits):
    """``[risk]``: the account-level limits (``autoquant.domain.risk.RiskLimits`` documents each)."""


class ReconcileSettings(_Section):
    interval_s: float = Field(default=30.0, gt=0)
    #: How long a reserved order that the broker does not know is given before it is sent again.
    resubmit_grace_s: float = Field(default=2.0, ge=0)


class DaemonSettings(_Section):
    drain_timeout_s: float = Field(default=10.0, gt=0)


def _default_strategies() -> list[StrategySettings]:
    return [
        StrategySettings(id="sma-aapl", kind="sma_cross", symbol="AAPL", fast=3, slow=8, qty=Decimal(10)),
        StrategySettings(id="sma-msft", kind="sma_cross", symbol="MSFT", fast=3, slow=8, qty=Decimal(5)),
    ]


class Config(_Section):
    ledger: LedgerSettings = LedgerSettings()
    broker: BrokerSettings = BrokerSettings()
    paper: PaperSettings = PaperSettings()
    marketdata: MarketDataSettings = MarketDataSettings()
    strategies: list[StrategySettings] = Field(default_factory=_default_strategies)
    risk: RiskSettings = RiskSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    logging: LoggingSettings = LoggingSettings()
    daemon: DaemonSettings = DaemonSettings()
    #: The file this came from (None for built-in defaults); relative paths resolve against its
    #: directory's parent when it lives in a ``config/`` folder, else against the working directory.
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _strategies(self) -> Config:
        seen: set[str] = set()
        for strategy in self.strategies:
            if strategy.id in seen:
                raise ValueError(f"strategy id {strategy.id!r} is used twice")
            seen.add(strategy.id)
            if strategy.symbol not in self.marketdata.symbols:
                raise ValueError(
                    f"strategy {strategy.id!r} trades {strategy.symbol}, which is not in [marketdata] symbols"
                )
        return self


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


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "config"
    if first["type"] == "extra_forbidden":
        return f"unknown key {where!r}: remove it or check its spelling"
    message = first["msg"].removeprefix("Value error, ")
    return f"invalid {where}: {message}"


def parse(data: dict[str, Any], source: Path | None = None) -> Config:
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}{_describe(error)}") from None
    return config.model_copy(update={"source": source})


def resolve_path(explicit: str | Path | None, environ: dict[str, str] | None = None) -> Path | None:
    """Which file to read: the flag, then the environment, then the default if it exists."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR])
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def load(explicit: str | Path | None = None, environ: dict[str, str] | None = None) -> Config:
    path = resolve_path(explicit, environ)
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist: pass --config with an existing file "
            "(config/autoquant.toml is the documented default)"
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    return parse(data, path)
