"""Notification channels: signed webhook, Slack, e-mail and Alertmanager.

Notifications go through an outbox in the alert database (written in the
same transaction as the transition, :mod:`alerts.notify.outbox`); each channel
runs in its own worker thread that delivers its rows with a rate limit and
retries with exponential backoff, so a failing channel never blocks the others
and catches up once it recovers, after a restart too. Every delivery carries a
stable idempotency key (:mod:`alerts.notify.keys`): delivery is at-least-once,
receivers de-duplicate by the key.
"""

from __future__ import annotations

from alerts.notify.base import Notification, Notifier
from alerts.notify.dispatch import Dispatcher, Grouper
from alerts.notify.factory import build_notifier, build_notifiers
from alerts.notify.keys import idempotency_key, notification_key
from alerts.notify.outbox import Outbox
from alerts.notify.worker import ChannelWorker, RetryPolicy

__all__ = [
    "ChannelWorker",
    "Dispatcher",
    "Grouper",
    "Notification",
    "Notifier",
    "Outbox",
    "RetryPolicy",
    "build_notifier",
    "build_notifiers",
    "idempotency_key",
    "notification_key",
]
