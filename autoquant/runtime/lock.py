"""One holder per file: an exclusive ``flock`` on the file's identity, released by the kernel on any exit.

A file has one identity however it is reached (a relative path, a symlink, a hard link), so the lock
is taken twice over: on ``<resolved path>.lock`` (every symlink leads to the same resolved path; the
file holds the holder's pid for the message) and on the file itself (its device and inode: a hard link
is the same inode under another name). The file is created empty if missing, which SQLite takes as a
new database. ``flock`` locks do not interact with SQLite's POSIX record locks on Linux; the lock's
own descriptor on the file is closed only at release, after the ledger is closed (closing any
descriptor drops a process's POSIX locks on that file).

``LedgerLock`` guards the ledger (one daemon, or one ``autoquant reconcile``, per ledger);
``PaperStateLock`` the paper exchange's state file (one embedded exchange or one paper-server).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from autoquant.errors import LedgerLocked

#: Where Linux lists the held locks (to name a hard link's holder); absent elsewhere.
PROC_LOCKS = Path("/proc/locks")


def _flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder_of_inode(path: Path) -> str:
    """The pid holding a ``flock`` on the file at ``path`` (from /proc/locks), or ``unknown``."""
    try:
        stat = path.stat()
        text = PROC_LOCKS.read_text()
    except OSError:
        return "unknown"
    identity = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    for line in text.splitlines():
        parts = line.split()
        if "FLOCK" in parts and identity in parts:
            return parts[parts.index(identity) - 1]
    return "unknown"


class FileLock:
    """An exclusive lock on a file's identity: ``acquire()`` or refuse with one line naming the holder."""

    #: What the file is, for the message (``ledger``, ``paper exchange state``).
    what = "file"

    def __init__(self, path: Path) -> None:
        self.target = path
        self.path = path.with_name(path.name + ".lock")  # as written, for the messages
        self._fds: list[int] = []

    def refusal(self, holder: str, how: str) -> str:
        return f"{self.what} {self.target} is held by process {holder}{how}: stop it first"

    def acquire(self) -> None:
        resolved = self.target.resolve()
        resolved.parent.mkdir(parents=True, exist_ok=True)
        lock_path = resolved.with_name(resolved.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _flock(fd):
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            how = "" if resolved == self.target.absolute() else f" (it is {resolved})"
            raise LedgerLocked(self.refusal(holder, how))
        self._fds.append(fd)
        try:
            inode = os.open(resolved, os.O_RDONLY | os.O_CREAT, 0o600)
        except BaseException:
            self.release()
            raise
        if not _flock(inode):
            holder = _holder_of_inode(resolved)
            os.close(inode)
            self.release()
            raise LedgerLocked(self.refusal(holder, " through another name (a hard link to the same file)"))
        self._fds.append(inode)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError:
            pass  # a full disk: the lock holds all the same, only the holder's pid goes unrecorded

    def release(self) -> None:
        while self._fds:
            fd = self._fds.pop()
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class LedgerLock(FileLock):
    """One daemon per ledger (``autoquant reconcile`` takes it too)."""

    what = "ledger"

    def refusal(self, holder: str, how: str) -> str:
        return (
            f"ledger {self.target} is held by a running daemon (pid {holder}){how}: stop it first "
            "(systemctl stop autoquant); the inspection commands work alongside it"
        )


class PaperStateLock(FileLock):
    """One paper exchange per state file: the daemon's embedded exchange or one ``paper-server``."""

    what = "paper exchange state"

    def refusal(self, holder: str, how: str) -> str:
        return (
            f"paper exchange state {self.target} is in use by another process (pid {holder}){how}, "
            "a daemon on the embedded exchange or a paper-server: stop it, or give this one its own "
            "[paper] state_path"
        )
