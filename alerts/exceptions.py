"""Errors of the alerts package (see :mod:`stream.contracts.errors` for the whole tree)::

AlertError
├── RulesError          the rules/channels file is invalid (not retriable)
├── StoreError          the SQLite alert store or checkpoint failed (not retriable)
├── NotifyError         a channel could not deliver a notification (retriable)
│   └── ChannelConfigError  a channel is misconfigured, e.g. a missing secret (not retriable)
└── InputError          an offline input file cannot be used (not retriable)
"""

from __future__ import annotations

from stream.contracts.errors import ConfigError, FinSentinelError

__all__ = [
    "AlertError",
    "ChannelConfigError",
    "InputError",
    "NotifyError",
    "NotifyRejected",
    "RulesError",
    "StoreError",
]


class AlertError(FinSentinelError):
    """Root of alerting errors."""


class RulesError(AlertError, ConfigError):
    """The rules file is invalid; the message names the file, line and field."""


class StoreError(AlertError):
    """The alert store or the checkpoint database failed."""


class NotifyError(AlertError):
    """A notification channel failed to deliver; the worker retries it."""

    retriable = True


class NotifyRejected(NotifyError):
    """The receiver refused the notification in a way retrying cannot fix."""

    retriable = False


class ChannelConfigError(NotifyError, ConfigError):
    """A channel cannot work as configured (missing secret, bad URL)."""

    retriable = False


class InputError(AlertError, ValueError):
    """An offline detection input cannot be used (missing column, unparsable time)."""
