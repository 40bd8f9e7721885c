"""``[logging]``: where the JSON log goes, how much of it, and how it is rotated."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LoggingSettings(BaseModel):
    """The file, the level, and rotation by size (``backups == 0`` never rotates, the stdlib's rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Path("var/autoquant.log")
    level: Literal["debug", "info", "warning", "error"] = "info"
    max_bytes: int = Field(default=10_000_000, gt=0)
    backups: int = Field(default=5, ge=0)
