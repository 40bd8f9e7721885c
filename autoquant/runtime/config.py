"""Configuration: one TOML file, validated, every key defaulted, unknown keys refused by name.

Where it comes from: ``--config PATH``, else ``$AUTOQUANT_CONFIG``, else ``config/autoquant.toml``
if it exists, else the built-in defaults (the embedded paper exchange on synthetic bars). Secrets
never come from the file: the Alpaca keys are read from ``APCA_API_KEY_ID`` and
``APCA_API_SECRET_KEY`` in the environment.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from autoquant.alerts.settings import AlertSettings
from autoquant.brokers.settings import (
    KEY_ID_VAR,
    SECRET_VAR,
    AlpacaBrokerSettings,
    BrokerSettings,
    FaultSettings,
    PaperBrokerSettings,
    PaperSettings,
    Secrets,
    alpaca_secrets,
)
from autoquant.domain.settings import Section
from autoquant.errors import ConfigError
from autoquant.ledger.settings import BackupSettings, LedgerSettings
from autoquant.logs.settings import LoggingSettings
from autoquant.marketdata.settings import MarketDataSettings
from autoquant.runtime.api_settings import ApiSettings
from autoquant.runtime.settings import DaemonSettings
from autoquant.strategies.settings import SmaCrossSettings, StrategySettings
from autoquant.workers.settings import ReconcileSettings, RiskSettings

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "KEY_ID_VAR",
    "SECRET_VAR",
    "AlpacaBrokerSettings",
    "BackupSettings",
    "BrokerSettings",
    "Config",
    "DaemonSettings",
    "FaultSettings",
    "LedgerSettings",
    "LoggingSettings",
    "MarketDataSettings",
    "PaperBrokerSettings",
    "PaperSettings",
    "ReconcileSettings",
    "RiskSettings",
    "Secrets",
    "SmaCrossSettings",
    "StrategySettings",
    "alpaca_secrets",
    "load",
    "parse",
    "resolve_path",
]

DEFAULT_PATH = Path("config/autoquant.toml")
ENV_VAR = "AUTOQUANT_CONFIG"


def _default_strategies() -> list[StrategySettings]:
    return [
        StrategySettings(
            id="sma-aapl", kind="sma_cross", symbol="AAPL", params={"fast": 3, "slow": 8, "qty": "10"}
        ),
        StrategySettings(
            id="sma-msft", kind="sma_cross", symbol="MSFT", params={"fast": 3, "slow": 8, "qty": "5"}
        ),
    ]


class Config(Section):
    ledger: LedgerSettings = LedgerSettings()
    broker: BrokerSettings = PaperBrokerSettings()
    paper: PaperSettings = PaperSettings()
    marketdata: MarketDataSettings = MarketDataSettings()
    strategies: list[StrategySettings] = Field(default_factory=_default_strategies)
    risk: RiskSettings = RiskSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    logging: LoggingSettings = LoggingSettings()
    daemon: DaemonSettings = DaemonSettings()
    backup: BackupSettings = BackupSettings()
    api: ApiSettings = ApiSettings()
    alerts: AlertSettings = AlertSettings()
    #: The file this came from (None for built-in defaults); relative paths in it resolve against its
    #: directory (its directory's parent when that is a ``config/`` folder: the project's root), never
    #: against the working directory (``anchor_paths``).
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _strategies(self) -> Config:
        seen: set[str] = set()
        for strategy in self.strategies:
            if strategy.id in seen:
                raise ValueError(f"strategy id {strategy.id!r} is used twice")
            seen.add(strategy.id)
            for symbol in strategy.traded:
                if symbol not in self.marketdata.symbols:
                    raise ValueError(
                        f"strategy {strategy.id!r} trades {symbol}, which is not in [marketdata] symbols"
                    )
        return self


def config_base(source: Path) -> Path:
    """The directory a config file's relative paths are relative to (see ``Config.source``)."""
    directory = source.absolute().parent
    return directory.parent if directory.name == "config" else directory


def anchor_paths(config: Config, base: Path) -> Config:
    """``config`` with every relative file path made absolute under ``base``."""

    def under(path: Path) -> Path:
        return path if path.is_absolute() else base / path

    csv = config.marketdata.csv_path
    backup = config.backup
    return config.model_copy(
        update={
            "ledger": config.ledger.model_copy(update={"path": under(config.ledger.path)}),
            "paper": config.paper.model_copy(update={"state_path": under(config.paper.state_path)}),
            "logging": config.logging.model_copy(update={"path": under(config.logging.path)}),
            "marketdata": config.marketdata.model_copy(
                update={"csv_path": None if csv is None else under(csv)}
            ),
            "backup": backup.model_copy(
                update={
                    "dir": None if backup.dir is None else under(backup.dir),
                    "litestream_config": (
                        None if backup.litestream_config is None else under(backup.litestream_config)
                    ),
                }
            ),
        }
    )


#: Sections whose settings are a union told apart by ``kind`` (pydantic puts the kind in the location).
#: Where the kind sits in an error's location: [broker] at 1. ([[strategies]] is one model; its params
#: are checked by the strategy's own model when it is loaded.)
_KINDED = {"broker": 1}


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"]]
    kind = None
    at = _KINDED.get(loc[0]) if loc else None
    if at is not None and len(loc) > at + 1:
        kind = loc.pop(at)
    where = ".".join(loc) or "config"
    if first["type"] == "union_tag_invalid":
        context = first.get("ctx", {})
        return (
            f"invalid {where}.{context.get('discriminator', 'kind').strip(chr(39))}: "
            f"{context.get('tag')!r} is not one of {context.get('expected_tags')}"
        )
    if first["type"] == "extra_forbidden":
        if kind is not None:
            return f"unknown key {where!r} for kind = {kind!r}: remove it, or set the kind that takes it"
        return f"unknown key {where!r}: remove it or check its spelling"
    message = first["msg"].removeprefix("Value error, ")
    return f"invalid {where}: {message}"


def parse(data: dict[str, Any], source: Path | None = None) -> Config:
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}{_describe(error)}") from None
    if source is not None:
        config = anchor_paths(config, config_base(source))
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
