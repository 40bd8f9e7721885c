"""``paper-server``'s command-line options and its warning about exposure, light enough for the CLI's
parser to import (the server itself pulls in uvicorn)."""

from __future__ import annotations

import argparse
import os

LOOPBACK = ("127.0.0.1", "::1", "localhost")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def add_arguments(parser: argparse.ArgumentParser, default_port: int = DEFAULT_PORT) -> None:
    """``--host`` and ``--port``, shared by ``autoquant paper-server`` and this module's ``main``."""
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on; anything but loopback exposes a plain-HTTP API with test keys",
    )
    parser.add_argument("--port", type=int, default=default_port, help="0 picks a free port (printed)")


def exposure_warning(host: str) -> str | None:
    """What to say when the server listens beyond loopback (None on loopback)."""
    if host in LOOPBACK:
        return None
    return (
        f"paper-server: WARNING: listening on {host}, beyond this machine: the API is plain HTTP (keys "
        "and orders travel unencrypted) and accepts the test keys it was started with; serve on "
        "127.0.0.1 unless the network is yours"
    )


def prepare_process() -> None:
    """Files a hand-started process creates are not world-readable (state, WAL, locks: 0640 at most)."""
    os.umask(0o027)
