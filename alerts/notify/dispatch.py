"""Route alerts to channels: silences, grouping by label, one worker per channel.

Grouping runs in event time: alerts of one rule and state whose ``group_by``
label has the same value and that start within ``group_wait_s`` of the first
become one notification, released once the watermark passes the group's
first alert + ``group_wait_s`` (or at :meth:`Dispatcher.flush`). Rules without
``group_by`` notify each alert on its own, immediately.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from alerts.notify.base import Notification, Notifier
from alerts.notify.worker import ChannelWorker, RetryPolicy
from alerts.rules import RulesFile
from stream.contracts.schemas import Alert

__all__ = ["Dispatcher", "Grouper"]

logger = logging.getLogger(__name__)


@dataclass
class _Group:
    first_s: float
    alerts: list[Alert] = field(default_factory=list)


class Grouper:
    """Collect alerts into groups keyed by (rule, state, group label value).

    >>> from alerts.testing import sample_alert
    >>> g = Grouper(group_wait_s=60)
    >>> a = sample_alert(key="r:ticker:JPM", series="JPM", labels={"sector": "banks"})
    >>> b = sample_alert(key="r:ticker:BAC", series="BAC", labels={"sector": "banks"})
    >>> g.add(a, "sector"), g.add(b, "sector")
    ([], [])
    >>> [(n.group, len(n.alerts)) for n in g.release(watermark_s=a.updated_at.timestamp() + 60)]
    [('sector=banks', 2)]
    """

    def __init__(self, *, group_wait_s: float) -> None:
        self.group_wait_s = group_wait_s
        self._groups: dict[tuple[str, str, str], _Group] = {}

    def add(self, alert: Alert, group_by: str | None) -> list[Notification]:
        """Add ``alert``; return notifications ready now (ungrouped alerts are)."""
        if group_by is None:
            return [Notification((alert,))]
        value = alert.labels.get(group_by, "")
        if not value:  # a series without the label is a group of its own
            return [Notification((alert,))]
        key = (alert.rule, alert.state, f"{group_by}={value}")
        group = self._groups.setdefault(key, _Group(alert.updated_at.timestamp()))
        group.alerts.append(alert)
        return []

    def release(self, *, watermark_s: float | None) -> list[Notification]:
        """Groups whose wait is over at event time ``watermark_s`` (None: all of them)."""
        out = []
        for key, group in list(self._groups.items()):
            if watermark_s is None or watermark_s >= group.first_s + self.group_wait_s:
                del self._groups[key]
                out.append(Notification(tuple(group.alerts), group=key[2]))
        return out


class Dispatcher:
    """Send alerts to their rules' channels through per-channel workers."""

    def __init__(
        self,
        rules: RulesFile,
        notifiers: dict[str, Notifier],
        *,
        clock: Callable[[], float],
        group_wait_s: float = 60.0,
        retry: RetryPolicy | None = None,
        queue_max: int = 1000,
        on_outcome: Callable[[str, str], None] = lambda _t, _o: None,
    ) -> None:
        self.rules = rules
        self._by_name = {r.name: r for r in rules.rules}
        self._clock = clock
        self.grouper = Grouper(group_wait_s=group_wait_s)
        configs = {c.name: c for c in rules.channels}
        self.workers: dict[str, ChannelWorker] = {}
        for name, notifier in notifiers.items():
            cfg = configs.get(name)
            self.workers[name] = ChannelWorker(
                notifier,
                rate_limit_per_minute=cfg.rate_limit_per_minute if cfg else 60,
                max_age_s=cfg.max_age_s if cfg else 86_400,
                retry=retry or RetryPolicy(),
                queue_max=queue_max,
                clock=clock,
                on_outcome=on_outcome,
            )

    def start(self) -> Dispatcher:
        """Start every channel's worker."""
        for w in self.workers.values():
            w.start()
        return self

    def submit(self, alert: Alert) -> None:
        """Route one (not silenced) alert; grouped ones wait for :meth:`release`."""
        rule = self._by_name.get(alert.rule)
        ready = self.grouper.add(alert, rule.group_by if rule else None)
        self._send(ready)

    def count_silenced(self, alert: Alert) -> None:
        """Count a silenced alert once per channel it would have gone to."""
        rule = self._by_name.get(alert.rule)
        for name in self.rules.channels_for(rule) if rule else list(self.workers):
            worker = self.workers.get(name)
            if worker is not None:
                worker.on_outcome(worker.notifier.channel_type, "silenced")

    def release(self, watermark_s: float | None) -> None:
        """Send the groups whose wait is over."""
        self._send(self.grouper.release(watermark_s=watermark_s))

    def flush(self) -> None:
        """Send every pending group (end of input or shutdown)."""
        self.release(None)

    def _send(self, notifications: list[Notification]) -> None:
        now = self._clock()
        for n in notifications:
            n = Notification(n.alerts, group=n.group, created_s=now)
            rule = self._by_name.get(n.first.rule)
            names = self.rules.channels_for(rule) if rule else list(self.workers)
            for name in names:
                worker = self.workers.get(name)
                if worker is not None:
                    worker.submit(n)

    def resend(self, alerts: list[Alert], *, channel_type: str = "alertmanager") -> None:
        """Re-send open alerts to the channels of one type (Alertmanager forgets otherwise)."""
        now = self._clock()
        for alert in alerts:
            rule = self._by_name.get(alert.rule)
            names = self.rules.channels_for(rule) if rule else list(self.workers)
            for name in names:
                worker = self.workers.get(name)
                if worker is not None and worker.notifier.channel_type == channel_type:
                    worker.submit(Notification((alert,), created_s=now))

    def send_test(self, channel: str, notification: Notification) -> None:
        """Send ``notification`` to one channel synchronously (``alerts test-notify``)."""
        self.workers[channel].notifier.send(notification)

    @property
    def pending(self) -> int:
        """Notifications queued over all channels."""
        return sum(w.pending for w in self.workers.values())

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop every worker."""
        for w in self.workers.values():
            w.stop(timeout_s)
