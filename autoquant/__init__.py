"""autoquant: an asyncio trading daemon with an append-only ledger."""
