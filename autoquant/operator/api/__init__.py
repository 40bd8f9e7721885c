"""The operator's HTTP face: the command layer and the inspection views under ``/api/v1``, live ledger
events over a websocket, Prometheus ``/metrics`` and a server-rendered status page.

It runs in its own process (``autoquant api``, which the daemon spawns when ``[api] listen`` is set),
reads the ledger read-only and writes operator acts through ``autoquant.operator.commands``, exactly as
the CLI does, so clients hammering it never share the trading loop's event loop or GIL.
"""
