"""The runtime: the composition root that builds the system from config, clock and broker; the daemon,
its supervisor, the ledger lock, sd_notify and the clocks."""
