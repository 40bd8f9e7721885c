"""The Broker port and its adapters: ``paper`` (embedded simulator and its server) and ``alpaca``."""
