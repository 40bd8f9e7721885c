"""The append-only SQLite ledger: migrations, the batching writer, ``LedgerReader`` (read-only, named
reads) and ``Ledger`` (reader + writes + the in-memory projection of hot state)."""

from autoquant.ledger.history import LedgerEvent, RealizedMarks, StoredFill
from autoquant.ledger.ledger import EventResult, Ledger
from autoquant.ledger.reads import Book, LedgerReader

__all__ = ["Book", "EventResult", "Ledger", "LedgerEvent", "LedgerReader", "RealizedMarks", "StoredFill"]
