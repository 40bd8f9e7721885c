"""``autoquant api``: serve the operator API in its own process (the daemon spawns it when
``[api] listen`` is set; run alone it answers while the daemon is down)."""

from __future__ import annotations

import asyncio
import contextlib
import os

import structlog
import uvicorn

from autoquant.errors import ConfigError
from autoquant.operator.api.app import create_app
from autoquant.operator.api.state import ApiState
from autoquant.runtime.api_process import PARENT_ENV
from autoquant.runtime.api_settings import is_loopback, split_listen
from autoquant.runtime.config import Config
from autoquant.runtime.priority import yield_cpu

log = structlog.get_logger("autoquant.api")
#: How often a daemon's API child checks that the daemon is still its parent.
ORPHAN_POLL_S = 1.0


def api_token(config: Config) -> str:
    """The bearer token from the environment (never the file); missing or short is a config error."""
    name = config.api.token_env
    token = os.environ.get(name, "").strip()
    if not token:
        raise ConfigError(
            f"[api] listen is set but ${name} is empty: export a token in ${name} "
            "(e.g. `export AUTOQUANT_API_TOKEN=$(openssl rand -hex 24)`); clients send it as a bearer token"
        )
    if len(token) < 16:
        raise ConfigError(f"${name} is shorter than 16 characters: use a long random token")
    return token


def listen_address(config: Config, override: str | None = None) -> tuple[str, int]:
    listen = override or config.api.listen
    if listen is None:
        raise ConfigError(
            '[api] listen is not set: add `listen = "127.0.0.1:8780"` under [api], or pass --listen'
        )
    try:
        host, port = split_listen(listen)
    except ValueError as error:
        raise ConfigError(f"[api] {error}") from None
    if not is_loopback(host) and not config.api.allow_remote:
        raise ConfigError(f"[api] listen {listen!r} is not loopback: set allow_remote = true to serve it")
    return host, port


async def serve(config: Config, listen: str | None = None) -> None:
    host, port = listen_address(config, listen)
    token = api_token(config)
    if not is_loopback(host):
        log.warning("api_serving_remote", host=host, port=port, note="reachable beyond this host")
    # The operator surface yields the CPU to trading (runtime/priority.py): every thread, before serving.
    yielded = yield_cpu(config.api.nice, config.api.idle)
    log.info(
        "api_priority",
        nice=yielded.nice,
        sched_idle=yielded.idle,
        own_autogroup=yielded.autogroup,
        threads=yielded.threads,
    )
    app = create_app(ApiState(config, token))
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    )
    log.info("api_serving", host=host, port=port)
    async with asyncio.TaskGroup() as tasks:
        watch = tasks.create_task(_stop_when_orphaned(server))
        await server.serve()
        watch.cancel()


async def _stop_when_orphaned(server: uvicorn.Server) -> None:
    """Started by the daemon (``PARENT_ENV`` set): stop serving once the daemon is gone."""
    parent = os.environ.get(PARENT_ENV, "")
    if not parent.isdigit():
        return
    orphaned = asyncio.Event()
    while not orphaned.is_set():
        with contextlib.suppress(TimeoutError):  # no event tells a process it is orphaned: poll the parent
            await asyncio.wait_for(orphaned.wait(), ORPHAN_POLL_S)
        if os.getppid() != int(parent):
            orphaned.set()
    log.warning("api_orphaned", parent=int(parent), note="the daemon is gone: stopping")
    server.should_exit = True


def run(config: Config, listen: str | None = None) -> int:
    asyncio.run(serve(config, listen))
    return 0
