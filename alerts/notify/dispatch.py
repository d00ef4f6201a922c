"""Route alerts to channels: silences, grouping by label, the outbox, one worker per channel.

Grouping runs in event time: alerts of one rule and state whose ``group_by``
label has the same value and that start within ``group_wait_s`` of the first
become one notification, released once the watermark passes the group's
first alert + ``group_wait_s`` (or at :meth:`Dispatcher.flush`). Rules without
``group_by`` notify each alert on its own, immediately.

A notification ready to go is written to the :class:`~alerts.notify.outbox.Outbox`
(one row per channel, in the caller's transaction when there is one) and the
channels' workers deliver it from there. The groups still waiting are saved
with each checkpoint (:meth:`Dispatcher.save_groups`) and restored on start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alerts.db import Database
from alerts.notify.base import Notification, Notifier
from alerts.notify.outbox import Outbox
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

    def state(self) -> list[dict[str, Any]]:
        """The waiting groups, JSON-able (for checkpoints)."""
        return [
            {
                "rule": rule,
                "state": state,
                "group": group,
                "first_s": g.first_s,
                "alerts": [a.model_dump(mode="json") for a in g.alerts],
            }
            for (rule, state, group), g in self._groups.items()
        ]

    def load(self, state: list[dict[str, Any]]) -> None:
        """Restore the groups :meth:`state` returned."""
        self._groups = {
            (g["rule"], g["state"], g["group"]): _Group(
                float(g["first_s"]), [Alert.model_validate(a) for a in g["alerts"]]
            )
            for g in state
        }


class Dispatcher:
    """Send alerts to their rules' channels through the outbox and per-channel workers.

    ``outbox`` defaults to one in a private in-memory database (tests, one-off use).
    """

    def __init__(
        self,
        rules: RulesFile,
        notifiers: dict[str, Notifier],
        *,
        clock: Callable[[], float],
        outbox: Outbox | None = None,
        group_wait_s: float = 60.0,
        retry: RetryPolicy | None = None,
        on_outcome: Callable[[str, str], None] = lambda _t, _o: None,
        on_pending: Callable[[str, int], None] = lambda _t, _n: None,
    ) -> None:
        self.rules = rules
        self._by_name = {r.name: r for r in rules.rules}
        self._clock = clock
        self.outbox = outbox if outbox is not None else Outbox(Database(":memory:"))
        self.grouper = Grouper(group_wait_s=group_wait_s)
        self._on_outcome = on_outcome
        self._on_pending = on_pending
        configs = {c.name: c for c in rules.channels}
        self.workers: dict[str, ChannelWorker] = {}
        for name, notifier in notifiers.items():
            cfg = configs.get(name)
            self.workers[name] = ChannelWorker(
                notifier,
                self.outbox,
                rate_limit_per_minute=cfg.rate_limit_per_minute if cfg else 60,
                max_age_s=cfg.max_age_s if cfg else 86_400,
                retry=retry or RetryPolicy(),
                clock=clock,
                on_outcome=on_outcome,
                on_change=self.report_pending,
            )

    def start(self) -> Dispatcher:
        """Start every channel's worker (they deliver what an earlier run left pending)."""
        if dropped := self.outbox.drop_unknown(self.workers, now_s=self._clock()):
            logger.warning(
                "outbox: dropped %d notifications for channels no longer in the rules", dropped
            )
        if left := self.outbox.pending():
            logger.info("outbox: %d notifications pending from before; delivering them", left)
        self.report_pending()
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
        for name in self._channels(alert):
            self._on_outcome(self.workers[name].notifier.channel_type, "silenced")

    def release(self, watermark_s: float | None) -> None:
        """Send the groups whose wait is over."""
        self._send(self.grouper.release(watermark_s=watermark_s))

    def flush(self) -> None:
        """Send every pending group (end of input or shutdown)."""
        self.release(None)

    def _channels(self, alert: Alert) -> list[str]:
        rule = self._by_name.get(alert.rule)
        names = self.rules.channels_for(rule) if rule else list(self.workers)
        return [n for n in names if n in self.workers]

    def _send(self, notifications: list[Notification], *, keep_alive: bool = False) -> None:
        now = self._clock()
        for n in notifications:
            self._enqueue(Notification(n.alerts, group=n.group, created_s=now), keep_alive)

    def _enqueue(self, n: Notification, keep_alive: bool, names: list[str] | None = None) -> None:
        names = self._channels(n.first) if names is None else names
        if not names:
            return
        _added, dropped = self.outbox.add(n, names, keep_alive=keep_alive)
        for name in names:
            for _ in range(dropped.get(name, 0)):
                self._on_outcome(self.workers[name].notifier.channel_type, "dropped")
            self.workers[name].wake()
        self.report_pending()

    def resend(self, alerts: list[Alert], *, channel_type: str = "alertmanager") -> None:
        """Re-send open alerts to the channels of one type (Alertmanager forgets otherwise).

        Keep-alives go through the outbox (so they stay in order with transitions), at
        most one waiting per alert and channel; a lost one is replaced by the next."""
        now = self._clock()
        for alert in alerts:
            names = [
                n for n in self._channels(alert)
                if self.workers[n].notifier.channel_type == channel_type
            ]  # fmt: skip
            self._enqueue(Notification((alert,), created_s=now), True, names)

    def send_test(self, channel: str, notification: Notification) -> None:
        """Send ``notification`` to one channel synchronously (``alerts test-notify``)."""
        self.workers[channel].notifier.send(notification)

    def save_groups(self) -> None:
        """Save the waiting groups (call inside the checkpoint's transaction)."""
        self.outbox.save_groups(self.grouper.state())

    def load_groups(self) -> None:
        """Restore the groups saved with the last checkpoint."""
        self.grouper.load(self.outbox.load_groups())

    def report_pending(self) -> None:
        """Report the rows waiting per channel type (the pending gauge)."""
        by_type: dict[str, int] = {}
        for name, worker in self.workers.items():
            t = worker.notifier.channel_type
            by_type[t] = by_type.get(t, 0) + self.outbox.pending(name)
        for t, n in by_type.items():
            self._on_pending(t, n)

    @property
    def pending(self) -> int:
        """Notifications waiting over all channels."""
        return sum(w.pending for w in self.workers.values())

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop every worker (what is still pending stays in the outbox)."""
        for w in self.workers.values():
            w.stop(timeout_s)
