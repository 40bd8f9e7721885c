"""The renderer process: JSON rendering, rotation and the file's I/O, off the daemon's GIL.

Why a process. Rendering a line (key order, timestamp text, ``json`` with a Python ``default`` for
Decimals) costs several microseconds of Python per record; on a writer *thread* that time holds the
daemon's GIL, and the event loop waits for it whenever it wakes up mid-batch (and, on a busy host,
whenever the OS preempts the writer while it holds the GIL). Pickling a whole batch is one C call,
about a quarter of the cost, so the writer thread only pickles and ``write()``s batches into a pipe;
this process, with its own GIL, renders them to the file and, when stderr is a real file descriptor
(journald, a terminal), to stderr.

The pipe carries frames: a 4-byte big-endian length, then a pickled list of event dicts. The child
says it is ready with one byte on stdout; it ignores SIGINT and SIGTERM (systemd and a terminal signal
the whole group, and the daemon must be able to log its own shutdown) and exits at end of input, after
writing everything, so the daemon's ``close()`` flushes by closing the pipe and waiting.

The child runs ``main(PATH, MAX_BYTES, BACKUPS, STDERR)`` (``STDERR``: ``none``, ``json`` or
``console``); ``RendererProcess`` is the daemon's side.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Final, Literal

from autoquant.logs.lines import EventDict, TimestampText, ordered, plain, render_lines
from autoquant.logs.sinks import RotatingFile

StderrMode = Literal["none", "json", "console"]

_HEADER: Final = struct.Struct(">I")
#: The child's program (not ``-m``: runpy warns when the package has already imported the module).
_CHILD: Final = "import sys; from autoquant.logs.renderer import main; sys.exit(main(sys.argv[1:]))"
_READY: Final = b"R"
#: The pipe's capacity (Linux allows up to /proc/sys/fs/pipe-max-size, 1 MiB by default): a burst
#: waits in the kernel rather than in the daemon's queue.
_PIPE_BYTES: Final = 1 << 20


class RendererProcess:
    """The daemon's side of the renderer: start it, send it batches, close and wait."""

    def __init__(
        self, path: Path, *, max_bytes: int, backups: int, stderr_fd: int | None, console: bool
    ) -> None:
        mode: StderrMode = "none" if stderr_fd is None else "console" if console else "json"
        self._process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), str(max_bytes), str(backups), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_fd,  # None: inherited, so a crash's traceback is seen
            close_fds=True,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._stdin, self._stdout = self._process.stdin, self._process.stdout
        with contextlib.suppress(OSError, AttributeError):  # F_SETPIPE_SZ: Linux only, best effort
            import fcntl

            fcntl.fcntl(self._stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)

    def wait_ready(self) -> bool:
        """Block (GIL released) until the child has started; False if it died instead."""
        return self._stdout.read(1) == _READY

    def send(self, batch: Sequence[EventDict]) -> None:
        """Hand a batch over; blocks while the pipe is full. Raises OSError if the child is gone."""
        try:
            data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # a value that does not pickle: send that batch in its plain form
            data = pickle.dumps([_picklable(event) for event in batch], protocol=pickle.HIGHEST_PROTOCOL)
        fd = self._stdin.fileno()
        view = memoryview(_HEADER.pack(len(data)) + data)
        while view:
            view = view[os.write(fd, view) :]

    def close(self, timeout_s: float) -> int | None:
        """End of input: the child writes what it has and exits. Its exit code, None if killed."""
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            code = self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            code = None
        self._stdout.close()
        return code

    def kill(self) -> None:
        """For a writer stuck past its deadline: the process goes, with whatever it had not written."""
        self._process.kill()
        self._process.wait()


def _picklable(event: EventDict) -> EventDict:
    """An event whose every value pickles: those that do not become their rendered form."""
    safe: EventDict = {}
    for key, value in event.items():
        try:
            pickle.dumps(value)
            safe[key] = value
        except Exception:
            safe[key] = plain(value)
    return safe


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    return data if len(data) == size else b""


def main(argv: Sequence[str]) -> int:
    """The child: frames in on stdin, lines out to the rotated file and (per mode) stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    path, max_bytes, backups, mode = argv
    if mode == "console":
        from autoquant.logs.console import render_console  # structlog: only a terminal needs it
    file = RotatingFile(Path(path), max_bytes=int(max_bytes), backups=int(backups))
    stderr = sys.stderr.buffer
    timestamp = TimestampText()
    source = sys.stdin.buffer
    sys.stdout.buffer.write(_READY)
    sys.stdout.buffer.flush()
    try:
        while header := _read_exactly(source, _HEADER.size):
            (size,) = _HEADER.unpack(header)
            payload = _read_exactly(source, size)
            if not payload:
                break  # the daemon died mid-frame
            events = [ordered(event, timestamp) for event in pickle.loads(payload)]
            lines = render_lines(events)
            file.write(lines)
            if mode == "json":
                stderr.write(("\n".join(lines) + "\n").encode("utf-8"))
            elif mode == "console":
                stderr.write("".join(render_console(event) + "\n" for event in events).encode("utf-8"))
            if mode != "none":
                stderr.flush()
    finally:
        file.close()
    return 0
