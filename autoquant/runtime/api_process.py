"""The operator API as a child process of the daemon: ``autoquant api`` with the daemon's config, so
its clients share nothing with the trading loop but the ledger file. The supervisor restarts it when
it exits; the daemon stops it when it stops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import structlog

from autoquant.errors import ConfigError
from autoquant.runtime.config import Config

log = structlog.get_logger("autoquant.daemon")

#: How long the child gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 5.0
#: Set in the child's environment to the daemon's pid: the child, which leaves the daemon's session for
#: its own (runtime/priority.py) and so no longer shares its terminal's hang-up, stops when it is
#: orphaned (the daemon killed without its shutdown running), instead of holding the port.
PARENT_ENV = "AUTOQUANT_API_PARENT_PID"


def check_api_settings(config: Config) -> None:
    """Fail the daemon's start (before anything trades) when ``[api] listen`` is set without a token."""
    if config.api.listen is None:
        return
    name = config.api.token_env
    token = os.environ.get(name, "").strip()
    if len(token) < 16:
        raise ConfigError(
            f"[api] listen is set but ${name} is {'empty' if not token else 'shorter than 16 characters'}: "
            f"export a long random token in ${name}, or remove [api] listen"
        )


def api_command(config: Config) -> list[str]:
    command = [sys.executable, "-m", "autoquant"]
    if config.source is not None:
        command += ["--config", str(config.source)]
    return [*command, "api"]


class ApiChild:
    """The child's runs: one that exits is started again after a growing pause (1 s up to 30 s), so a
    port in use never spins, and never counts as a crashing trading worker (which would halt trading)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.exits = 0

    async def run(self) -> None:
        if self.exits:
            await asyncio.sleep(min(30.0, 2.0 ** (self.exits - 1)))  # backoff before a restart
        started = asyncio.get_running_loop().time()
        await run_api_process(self.config)
        self.exits = 0 if asyncio.get_running_loop().time() - started > 60 else self.exits + 1


async def run_api_process(config: Config) -> None:
    """Run the API child until it exits or this task is cancelled."""
    process = await asyncio.create_subprocess_exec(
        *api_command(config),
        stdin=asyncio.subprocess.DEVNULL,
        env={**os.environ, PARENT_ENV: str(os.getpid())},
    )
    log.info("api_started", pid=process.pid, listen=config.api.listen)
    try:
        code = await process.wait()
        log.warning("api_exited", pid=process.pid, code=code)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
