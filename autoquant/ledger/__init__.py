"""The append-only SQLite ledger: migrations, the group-commit writer, the ``Ledger`` object."""

from autoquant.ledger.ledger import EventResult, Ledger

__all__ = ["EventResult", "Ledger"]
