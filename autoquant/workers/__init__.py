"""The asyncio workers (execution, strategy, market data, reconciliation, kill switch) and the supervisor."""
