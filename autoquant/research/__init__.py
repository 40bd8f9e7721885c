"""Research on the production path: ``autoquant backtest`` and ``autoquant replay``.

Above the runtime in the layer table: it builds the system through the same composition root as the
daemon (``runtime.system``) and drives it on recorded bars under the virtual clock.
"""
