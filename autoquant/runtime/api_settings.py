"""``[api]``: the operator's HTTP surface (off unless ``listen`` is set)."""

from __future__ import annotations

import ipaddress

from pydantic import Field, model_validator

from autoquant.domain.settings import Section

DEFAULT_TOKEN_ENV = "AUTOQUANT_API_TOKEN"


class ApiSettings(Section):
    #: ``HOST:PORT`` to serve on; unset = no HTTP surface.
    listen: str | None = None
    #: Bind to a non-loopback address (then a token is mandatory and a warning is logged).
    allow_remote: bool = False
    #: The environment variable holding the bearer token (never the file).
    token_env: str = DEFAULT_TOKEN_ENV
    #: Request bodies above this many bytes are refused (413).
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    #: Writes (POST) allowed per client per minute before 429.
    writes_per_minute: int = Field(default=30, gt=0)
    #: Read answers are shared by every client asking within this many seconds (0 = no cache).
    cache_s: float = Field(default=0.5, ge=0)
    #: The API process's niceness: the kernel lets trading run first when CPU is short (0 = as trading).
    nice: int = Field(default=10, ge=0, le=19)
    #: Linux's SCHED_IDLE for the API process: it runs only on CPU time nothing at normal priority wants,
    #: and a waking trading thread preempts it at once. Off by default: on a host kept busy by other
    #: work the API then answers nothing (measured: 5 s timeouts at load 9 on 2 cores); for a host that
    #: runs the daemon alone.
    idle: bool = False

    @model_validator(mode="after")
    def _listen(self) -> ApiSettings:
        if self.listen is None:
            return self
        host, port = split_listen(self.listen)
        if not self.allow_remote and not is_loopback(host):
            raise ValueError(
                f"listen {self.listen!r} is not a loopback address: use 127.0.0.1, or set "
                "allow_remote = true (which requires a token)"
            )
        del port
        return self


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8780"`` -> ("127.0.0.1", 8780); a bad value names what is expected."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f'listen {listen!r} must be HOST:PORT, e.g. "127.0.0.1:8780"')
    return host.strip("[]"), int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
