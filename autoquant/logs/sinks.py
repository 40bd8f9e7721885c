"""Where rendered lines go: the size-rotated JSON file, and stderr (JSON for journald, or a terminal).

Each sink takes a whole batch at a time. The file is written with one ``write`` of the batch's bytes
(a system call that releases the GIL) unless the batch crosses ``max_bytes``; only then is it split
line by line, so rotation stays exact: a file never grows past ``max_bytes`` unless a single line does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, TextIO

from autoquant.logs.lines import EventDict


class RotatingFile:
    """Appends lines to ``path``; past ``max_bytes`` rolls it to ``.1``, ``.2``… keeping ``backups``.

    With ``backups == 0`` the file is never rotated (the stdlib's rule), so keep at least one backup.
    """

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._backups = backups
        self._file = self._open()
        self._size = path.stat().st_size

    def _open(self) -> BinaryIO:
        return open(self.path, "ab", buffering=0)

    def write(self, lines: Sequence[str]) -> None:
        data = ("\n".join(lines) + "\n").encode("utf-8")
        if self._backups == 0 or self._size + len(data) <= self._max_bytes:
            self._write(data)
            return
        pending: list[bytes] = []
        pending_size = 0
        for line in lines:
            encoded = (line + "\n").encode("utf-8")
            if self._size + pending_size > 0 and self._size + pending_size + len(encoded) > self._max_bytes:
                self._write(b"".join(pending))
                pending, pending_size = [], 0
                self._rotate()
            pending.append(encoded)
            pending_size += len(encoded)
        self._write(b"".join(pending))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            view = view[written:]
        self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        for index in range(self._backups - 1, 0, -1):
            older = Path(f"{self.path}.{index}")
            if older.exists():
                os.replace(older, f"{self.path}.{index + 1}")
        os.replace(self.path, f"{self.path}.1")
        self._file = self._open()
        self._size = 0

    def close(self) -> None:
        self._file.close()


class StreamSink:
    """A text stream (stderr): the JSON lines as they are, or the console rendering on a terminal."""

    def __init__(self, stream: TextIO, *, console: bool) -> None:
        self._stream = stream
        self.console = console

    def write(self, lines: Sequence[str]) -> None:
        self._stream.write("\n".join(lines) + "\n")
        self._stream.flush()

    def write_console(self, events: Sequence[EventDict]) -> None:
        from autoquant.logs.console import render_console  # structlog: kept out of the renderer's start-up

        self._stream.write("".join(render_console(event) + "\n" for event in events))
        self._stream.flush()

    def close(self) -> None:
        """The stream belongs to whoever passed it in; only flush."""
        self._stream.flush()
