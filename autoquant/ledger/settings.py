"""``[ledger]``: where the ledger file lives."""

from __future__ import annotations

from pathlib import Path

from autoquant.domain.settings import Section


class LedgerSettings(Section):
    path: Path = Path("var/autoquant.db")
