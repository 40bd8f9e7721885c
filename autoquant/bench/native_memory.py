"""Where a process's native memory sits: SQLite's own allocations and glibc's heap, for ``make soak``.

RSS alone cannot tell a leak from caches filling up. Two counters can:

- ``sqlite3_memory_used()`` of the SQLite library Python's ``sqlite3`` module is linked against (the same
  loaded copy: ``dlopen`` of an already loaded library returns it): every page cache, statement and
  schema of every connection in the process;
- glibc's ``mallinfo2()``: bytes in use in all malloc arenas (``uordblks``, which includes SQLite's and
  Python's large allocations) and bytes held free in them (``fordblks``: memory glibc keeps for reuse,
  still resident).

Both are read through ``ctypes``; where either library is missing (not glibc, a static SQLite) the
figure is ``None`` and the soak says so rather than guessing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MB = 1024 * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@dataclass(frozen=True)
class NativeMemory:
    """MB, or None where the counter is not available on this system."""

    sqlite_mb: float | None
    malloc_in_use_mb: float | None
    malloc_free_mb: float | None
    #: Bytes in blocks glibc mapped on their own (``hblkhd``: allocations over the mmap threshold).
    mmapped_mb: float | None


@cache
def _sqlite() -> ctypes.CDLL | None:
    import _sqlite3  # the extension module: its path tells which SQLite it loaded

    for name in ("libsqlite3.so.0", ctypes.util.find_library("sqlite3")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.sqlite3_libversion.restype = ctypes.c_char_p
        if lib.sqlite3_libversion().decode() != _sqlite3.sqlite_version:
            continue  # another copy than the one the sqlite3 module uses: its counter would be someone else's
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        return lib
    return None


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    return libc


def open_databases() -> dict[str, int]:
    """How many descriptors this process holds on each ``*.db`` file (by name): one per open connection,
    so a connection that is opened again and again without being closed shows as a growing count."""
    held: dict[str, int] = {}
    fds = Path("/proc/self/fd")
    for fd in fds.iterdir() if fds.is_dir() else ():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.endswith(".db"):
            name = Path(target).name
            held[name] = held.get(name, 0) + 1
    return held


def native_memory() -> NativeMemory:
    """This process's SQLite and malloc figures, now."""
    sqlite = _sqlite()
    libc = _libc()
    info = libc.mallinfo2() if libc is not None else None
    return NativeMemory(
        sqlite_mb=round(sqlite.sqlite3_memory_used() / MB, 2) if sqlite is not None else None,
        malloc_in_use_mb=round(info.uordblks / MB, 2) if info is not None else None,
        malloc_free_mb=round(info.fordblks / MB, 2) if info is not None else None,
        mmapped_mb=round(info.hblkhd / MB, 2) if info is not None else None,
    )
