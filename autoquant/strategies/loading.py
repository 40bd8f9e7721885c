"""Finding and building a strategy class: built-in kinds, ``module:Class``, entry points.

Every failure is one ``ConfigError`` line naming ``strategies[ID]`` and the key at fault, raised before
any ledger is opened: an unknown kind, a module that does not import, a missing class, a class that
is not a strategy, a parameter of the wrong type, a missing or unknown parameter.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from autoquant.domain.strategy import Strategy
from autoquant.errors import ConfigError
from autoquant.strategies.settings import StrategySettings

#: The entry-point group an installed package registers its strategies under.
ENTRY_POINT_GROUP = "autoquant.strategies"


@contextmanager
def _searching(base_dir: Path | None) -> Iterator[None]:
    """``base_dir`` first on the import path for the duration (a config's own strategy modules)."""
    entry = None if base_dir is None else str(base_dir.resolve())
    if entry is None or entry in sys.path:
        yield
        return
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)


def _import_class(where: str, kind: str, base_dir: Path | None) -> type[Any]:
    module_name, _, class_name = kind.partition(":")
    if not module_name or not class_name:
        raise ConfigError(f"invalid {where}.kind {kind!r}: write it as 'package.module:ClassName'")
    searched = f"{base_dir} and the Python path" if base_dir is not None else "the Python path"
    try:
        with _searching(base_dir):
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and module_name.startswith(error.name):
            raise ConfigError(
                f"invalid {where}.kind {kind!r}: no module {module_name!r} in {searched}"
            ) from None
        raise ConfigError(f"invalid {where}.kind {kind!r}: importing {module_name} failed: {error}") from None
    except Exception as error:  # a user module that raises at import: say so in one line
        raise ConfigError(
            f"invalid {where}.kind {kind!r}: importing {module_name} failed: {type(error).__name__}: {error}"
        ) from None
    found = getattr(module, class_name, None)
    if found is None:
        raise ConfigError(f"invalid {where}.kind {kind!r}: module {module_name} has no {class_name!r}")
    if not isinstance(found, type):
        raise ConfigError(f"invalid {where}.kind {kind!r}: {class_name} is not a class")
    return found


def _entry_point_class(where: str, kind: str) -> type[Any] | None:
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name == kind:
            try:
                found = point.load()
            except Exception as error:  # an installed package whose module fails to import
                raise ConfigError(
                    f"invalid {where}.kind {kind!r}: entry point {point.value} failed to load: {error}"
                ) from None
            if not isinstance(found, type):
                raise ConfigError(f"invalid {where}.kind {kind!r}: entry point {point.value} is not a class")
            return found
    return None


def find_class(
    settings: StrategySettings, builtins: Mapping[str, type[Any]], base_dir: Path | None
) -> type[Any]:
    """The class ``settings.kind`` names: a built-in, ``module:Class``, or an entry point."""
    where = f"strategies[{settings.id}]"
    kind = settings.kind
    if ":" in kind:
        return _import_class(where, kind, base_dir)
    if kind in builtins:
        return builtins[kind]
    found = _entry_point_class(where, kind)
    if found is None:
        known = ", ".join(repr(name) for name in sorted(builtins))
        raise ConfigError(
            f"unknown {where}.kind {kind!r}: the built-in kinds are {known}; a class of your own is "
            "'module:ClassName', an installed one an entry point in the group 'autoquant.strategies'"
        )
    return found


def _params_error(where: str, error: ValidationError) -> ConfigError:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    at = f"{where}.params.{key}" if key else f"{where}.params"
    if first["type"] == "missing":
        return ConfigError(f"missing {at}: add it to [strategies.params]")
    if first["type"] == "extra_forbidden":
        return ConfigError(f"unknown key {at}: remove it or check its spelling")
    message = first["msg"].removeprefix("Value error, ")
    return ConfigError(f"invalid {at}: {message} (got {first.get('input')!r})")


def construct(cls: type[Any], settings: StrategySettings) -> Strategy:
    """Validate the parameters against ``cls.Params`` and build the strategy."""
    where = f"strategies[{settings.id}]"
    model = getattr(cls, "Params", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigError(
            f"invalid {where}.kind {settings.kind!r}: {cls.__name__} has no pydantic 'Params' model "
            "(a strategy declares its parameters as `class Params(BaseModel)`)"
        )
    try:
        params = model.model_validate(settings.params)
    except ValidationError as error:
        raise _params_error(where, error) from None
    try:
        builder = getattr(cls, "from_params", None)
        if builder is not None:
            strategy = builder(settings.id, settings.traded, params)
        else:
            strategy = cls(id=settings.id, symbols=settings.traded, params=params)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"invalid {where}: {error}") from None
    for attribute in ("id", "symbols", "warmup", "decide"):
        if not hasattr(strategy, attribute):
            raise ConfigError(
                f"invalid {where}.kind {settings.kind!r}: {cls.__name__} has no {attribute!r} "
                "(a strategy has id, symbols, warmup and decide)"
            )
    if tuple(strategy.symbols) != settings.traded:
        raise ConfigError(
            f"invalid {where}: {cls.__name__} trades {tuple(strategy.symbols)}, the config says "
            f"{settings.traded}"
        )
    built: Strategy = strategy
    return built
