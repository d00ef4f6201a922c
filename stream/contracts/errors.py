"""The FinSentinel error tree.

Every error raised by FinSentinel code derives from :class:`FinSentinelError`.
Each carries ``retriable`` as a class attribute so callers decide by attribute,
never by parsing messages::

    FinSentinelError
    ├── ConfigError            invalid or inconsistent settings (not retriable)
    ├── SchemaError            a message that fails its schema (not retriable)
    ├── BrokerError            Kafka is unreachable or refused a request (retriable)
    │   └── BrokerStartError   the embedded broker could not start (not retriable)
    ├── ModelError             defined in ``models.exceptions``
    ├── IngestError            defined in ``ingest.exceptions``
    └── AlertError             defined in ``alerts.exceptions``

Packages define their own one-line subclasses in their ``exceptions`` module and
wrap third-party errors at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "BrokerStartError",
    "ConfigError",
    "FinSentinelError",
    "SchemaError",
]


class FinSentinelError(Exception):
    """Root of every FinSentinel error."""

    retriable: bool = False


class ConfigError(FinSentinelError, ValueError):
    """Settings are invalid or contradict each other; the message says how to fix it."""


class SchemaError(FinSentinelError, ValueError):
    """A message does not match its schema.

    ``reason`` is a short machine-readable code from a fixed set (used as a
    metric label and in dead-letter records); the message is the human detail.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class BrokerError(FinSentinelError):
    """Kafka could not be reached or refused a request."""

    retriable = True


class BrokerStartError(BrokerError):
    """The embedded broker could not be started."""

    retriable = False
