"""Notification channels: signed webhook, Slack, e-mail and Alertmanager.

Each channel runs in its own worker thread with a bounded queue, a rate limit
and retries with exponential backoff, so a failing channel never blocks the
others and catches up once it recovers.
"""

from __future__ import annotations

from alerts.notify.base import Notification, Notifier
from alerts.notify.dispatch import Dispatcher, Grouper
from alerts.notify.factory import build_notifier, build_notifiers
from alerts.notify.worker import ChannelWorker, RetryPolicy

__all__ = [
    "ChannelWorker",
    "Dispatcher",
    "Grouper",
    "Notification",
    "Notifier",
    "RetryPolicy",
    "build_notifier",
    "build_notifiers",
]
