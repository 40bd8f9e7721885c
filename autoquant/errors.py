"""The error hierarchy, typed by what the caller must do.

AutoquantError
├── DomainError                 bad input or a broken rule (domain.errors)
│   └── IllegalTransition       record an incident; never apply or drop silently
│       └── Overfill
├── ConfigError                 stop: the operator must fix the config
├── LedgerError                 stop trading: the ledger cannot be trusted or reached
│   ├── LedgerCorrupt           not SQLite, or integrity check failed
│   ├── LedgerTooNew            written by a newer autoquant
│   ├── MigrationMismatch       an applied migration's file changed
│   ├── LedgerLocked            another daemon holds it
│   └── LedgerFull              no room left on its disk: free space, then resume
└── BrokerError
    ├── BrokerTransient         retry with backoff (429, 5xx on reads, connection refused)
    ├── BrokerAmbiguous         the submit's outcome is unknown: reconcile by lookup
    ├── BrokerRejected          record and move on (4xx with the broker's reason)
    │   └── DuplicateClientOrderId   adopt the existing order
    ├── BrokerNotFound          the broker has no such order
    └── BrokerAuthError         stop: the keys are wrong
"""

from __future__ import annotations

from autoquant.domain.errors import DomainError, IllegalTransition, Overfill


class AutoquantError(Exception):
    """Base of everything autoquant raises on purpose."""


class ConfigError(AutoquantError):
    """The configuration is invalid; the message names the key and what to do."""


class LedgerError(AutoquantError):
    """The ledger cannot be opened, read or written."""


class LedgerCorrupt(LedgerError):
    pass


class LedgerTooNew(LedgerError):
    pass


class MigrationMismatch(LedgerError):
    pass


class LedgerLocked(LedgerError):
    pass


class LedgerFull(LedgerError):
    pass


class BrokerError(AutoquantError):
    """A broker call failed."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class BrokerTransient(BrokerError):
    """Safe to retry: nothing was changed at the broker (or the call is a read)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        retry_after_s: float | None = None,
    ):
        super().__init__(message, status=status, code=code)
        self.retry_after_s = retry_after_s


class BrokerAmbiguous(BrokerError):
    """A submit whose outcome is unknown; the order must be looked up by client order id."""


class BrokerRejected(BrokerError):
    """The broker refused the request; the message is the broker's reason."""


class DuplicateClientOrderId(BrokerRejected):
    """The broker already has an order with this client order id: we sent it before."""


class BrokerNotFound(BrokerError):
    pass


class BrokerAuthError(BrokerError):
    pass


class BrokerPayloadInvalid(BrokerError):
    """The broker sent something autoquant cannot read; ``raw`` is the payload, kept for the incident."""

    def __init__(self, message: str, raw: object = None) -> None:
        super().__init__(message)
        self.raw = raw


__all__ = [
    "FATAL_ERRORS",
    "AutoquantError",
    "BrokerAmbiguous",
    "BrokerAuthError",
    "BrokerError",
    "BrokerNotFound",
    "BrokerPayloadInvalid",
    "BrokerRejected",
    "BrokerTransient",
    "ConfigError",
    "DomainError",
    "DuplicateClientOrderId",
    "IllegalTransition",
    "LedgerCorrupt",
    "LedgerError",
    "LedgerFull",
    "LedgerLocked",
    "LedgerTooNew",
    "MigrationMismatch",
    "Overfill",
    "is_fatal",
]


#: Errors no restart can cure: the operator must act (fix the keys, the config, restore the ledger).
FATAL_ERRORS: tuple[type[AutoquantError], ...] = (
    ConfigError,
    LedgerCorrupt,
    LedgerTooNew,
    MigrationMismatch,
    LedgerLocked,
    BrokerAuthError,
)


def is_fatal(error: BaseException) -> bool:
    """Whether ``error`` stops the daemon rather than earning the worker a restart."""
    return isinstance(error, FATAL_ERRORS)
