"""The daemon's status side file, which ``autoquant status`` reads: liveness, not ledger history.

Every second the daemon writes what only it knows: its pid, whether it is healthy and why not, each
worker's state and heartbeat, whether the broker can be reached (REST and the order-update stream),
whether the last reconciliation failed, the ledger disk's room, whether market data has ended. At exit
it writes ``stopped`` with every worker stopped, so the file never shows a dead daemon's workers running.

The file must be writable when the disk is full (that is when the operator needs it most): it is padded
to a fixed size at start, so a write is normally a new file renamed over it (atomic) and, when the disk
has no room for a new file, an overwrite in place of the blocks it already has. Readers accept the
trailing padding (JSON ignores whitespace) and retry a read that caught a write half done.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("autoquant.daemon")

#: The size the file is padded to (the body is a few KiB; it grows by doubling if it ever needs to).
PADDED_BYTES = 64 * 1024
FILE_MODE = 0o640


def status_path(ledger_path: Path) -> Path:
    """Where a running daemon publishes its status (next to the ledger)."""
    return ledger_path.with_name(ledger_path.name + ".status.json")


class StatusFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = PADDED_BYTES
        self._failing = False

    def _encode(self, body: dict[str, Any]) -> bytes:
        data = json.dumps(body, indent=1).encode()
        while len(data) + 1 > self.size:
            self.size *= 2
        return data + b"\n" + b" " * (self.size - len(data) - 1)

    def write(self, body: dict[str, Any]) -> bool:
        """Publish ``body``; False (logged once per failing spell) when neither way could write it."""
        data = self._encode(body)
        try:
            self._replace(data)
        except OSError as replace_error:
            try:
                self._overwrite(data)
            except OSError as error:
                if not self._failing:
                    log.error("status_file_unwritable", path=str(self.path), error=str(error))
                self._failing = True
                return False
            if not self._failing:
                log.warning("status_file_written_in_place", path=str(self.path), error=str(replace_error))
            self._failing = True
            return True
        self._failing = False
        return True

    def _replace(self, data: bytes) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise

    def _overwrite(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY)
        try:
            if os.fstat(fd).st_size < len(data):
                raise OSError(f"{self.path} is smaller than the status (no room to grow it)")
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)


def read_status(path: Path, attempts: int = 3) -> dict[str, Any]:
    """The status file's body; raises ``FileNotFoundError``, or ``ValueError`` if it cannot be read
    whole after ``attempts`` (a read that met an in-place write half done is retried)."""
    for attempt in range(attempts):
        text = path.read_text(encoding="utf-8")
        try:
            body = json.loads(text)
        except ValueError:
            if attempt == attempts - 1:
                raise
            continue
        if not isinstance(body, dict):
            raise ValueError(f"{path} does not hold a JSON object")
        return body
    raise ValueError(f"{path} could not be read")  # pragma: no cover - the loop returns or raises
