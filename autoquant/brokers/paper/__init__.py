"""The paper exchange: a persistent simulated venue and the ``Broker`` over it."""

from autoquant.brokers.paper.broker import PaperBroker
from autoquant.brokers.paper.engine import PaperExchange

__all__ = ["PaperBroker", "PaperExchange"]
