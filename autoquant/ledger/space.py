"""How much room is left where a file lives: the free space and the device, in words an operator acts on."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

#: Below this many free bytes the ledger's disk counts as full (a commit needs a few pages, the WAL more).
LOW_SPACE_BYTES = 256 * 1024
MOUNTINFO = Path("/proc/self/mountinfo")


@dataclass(frozen=True)
class Space:
    free: int
    device: str
    mount_point: str

    @property
    def low(self) -> bool:
        return self.free < LOW_SPACE_BYTES

    def describe(self) -> str:
        return f"{human_bytes(self.free)} free on {self.device} mounted at {self.mount_point}"


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop returns at GiB


def _mount_of(path: Path) -> tuple[str, str]:
    """(device, mount point) of the filesystem holding ``path``, from /proc/self/mountinfo."""
    try:
        dev = os.stat(path).st_dev
        lines = MOUNTINFO.read_text().splitlines()
    except OSError:
        return "an unknown device", str(path)
    wanted = f"{os.major(dev)}:{os.minor(dev)}"
    for line in reversed(lines):  # the last mount of a device id is the visible one
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) > 4 and fields[2] == wanted and len(tail) > 1:
            source, fstype = tail[1], tail[0]
            return (source if source == fstype else f"{source} ({fstype})"), fields[4]
    return f"device {wanted}", str(path)


def space_at(path: Path) -> Space | None:
    """The free space of the filesystem holding ``path`` (or its nearest existing parent)."""
    where = path
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        stat = os.statvfs(where)
    except OSError:
        return None
    device, mount_point = _mount_of(where)
    return Space(free=stat.f_bavail * stat.f_frsize, device=device, mount_point=mount_point)


def size_limit_reached(path: Path, margin: int = 65536) -> int | None:
    """The process's file-size limit (``ulimit -f``, systemd's ``LimitFSIZE=``) when the ledger or its
    WAL or journal has come within ``margin`` of it (SQLite then reports a disk I/O error); else None."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit == resource.RLIM_INFINITY:
        return None
    for name in (path.name, path.name + "-wal", path.name + "-journal"):
        try:
            if path.with_name(name).stat().st_size + margin >= limit:
                return limit
        except OSError:
            continue
    return None
