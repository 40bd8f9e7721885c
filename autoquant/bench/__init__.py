"""``make bench``: the numbers the issue sets targets for, measured on this machine in one run.

Each module measures one group and returns a dict of result keys (``ledger_writes``, ``risk_latency``,
``tick_to_submit``, ``startup``, ``throughput``); ``report`` adds the targets and ``__main__`` prints
progress lines, then one JSON object as the last line (also written to ``.bench/latest.json``).
Comparisons (the ledger against raw SQLite) are ratios measured in the same run, so a slow disk
moves both sides together.
"""
