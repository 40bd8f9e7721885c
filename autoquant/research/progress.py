"""A progress bar on a terminal for long backtests (nothing when stderr is not a terminal)."""

from __future__ import annotations

from typing import TextIO

WIDTH = 30


class Progress:
    def __init__(self, total: int, stream: TextIO, *, min_total: int = 10_000) -> None:
        self.total = total
        self.stream = stream
        self.enabled = stream.isatty() and total >= min_total
        self._shown = -1

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        percent = done * 100 // self.total
        if percent == self._shown:
            return
        self._shown = percent
        filled = WIDTH * percent // 100
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (WIDTH - filled)}] {percent:3d}% {done}/{self.total} bars"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._shown >= 0:
            self.stream.write("\n")
            self.stream.flush()
