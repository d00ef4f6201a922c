"""What a notification is and how channels render it.

A :class:`Notification` carries one alert, or several alerts of one group
(e.g. many tickers of one sector firing within the group window), and the
idempotency key every channel sends with it (:mod:`alerts.notify.keys`).

>>> from alerts.testing import sample_alert
>>> n = Notification((sample_alert(),), created_s=1.0)
>>> Notification.loads(n.dumps()) == n
True
>>> n.key, json.loads(n.to_json())["idempotency_key"] == n.key
('fs1-2ee8ac9efa00f4b64827219f23ca72fe', True)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from alerts.notify.keys import idempotency_key, notification_key
from stream.contracts.schemas import Alert

__all__ = ["FEEDBACK_HINT", "SHOWN_EVIDENCE", "TEST_LABEL", "Notification", "Notifier", "is_test"]

#: The label (value ``"true"``) of a test notification (``finsentinel alerts test-notify``).
TEST_LABEL = "test"
#: Evidence headlines shown per alert in text bodies; the ids of the rest follow them.
SHOWN_EVIDENCE = 3
#: How a reader corrects a wrongly scored evidence document (by the id each body shows).
FEEDBACK_HINT = (
    "Wrong label? finsentinel feedback add DOC_ID --sentiment negative|neutral|positive "
    "[--topic TOPIC]"
)


def is_test(alert: Alert) -> bool:
    """Whether ``alert`` is a test notification, not a real condition."""
    return alert.labels.get(TEST_LABEL) == "true"


@dataclass(frozen=True)
class Notification:
    """One message to send: alerts of one rule and state, grouped or alone."""

    alerts: tuple[Alert, ...]
    #: ``label=value`` when the alerts were grouped by a rule's ``group_by`` label.
    group: str | None = None
    #: Wall-clock time (epoch seconds) the notification was queued.
    created_s: float = 0.0

    @property
    def first(self) -> Alert:
        """The first alert (they share rule, state and severity)."""
        return self.alerts[0]

    @property
    def title(self) -> str:
        """One line: state, severity and what fired."""
        a = self.first
        what = (
            f"{len(self.alerts)} series ({self.group})"
            if len(self.alerts) > 1
            else f"{a.series_kind} {a.series}"
        )
        prefix = "[TEST] " if is_test(a) else ""
        return f"{prefix}[{a.state.upper()}] {a.severity}: {a.rule} on {what}"

    @property
    def key(self) -> str:
        """The idempotency key: the same on every re-send of this notification."""
        return notification_key(self.alerts)

    def text(self) -> str:
        """Plain-text body: each alert's summary, its top headlines and every evidence id.

        >>> from alerts.testing import sample_alert
        >>> print(Notification((sample_alert(),)).text())  # doctest: +ELLIPSIS
        [FIRING] warning: negative-spike-topic on topic Earnings
        <BLANKLINE>
        * Spike in negative coverage ... (score ..., key negative-spike-topic:topic:Earnings)
            - ... [wire, 9...%, id e0] <https://news.example/e0>
        ...
        Wrong label? finsentinel feedback add DOC_ID ...
        """
        lines = [self.title, ""]
        for a in self.alerts:
            lines.append(f"* {a.summary} (score {a.score:.2f}, key {a.key})")
            for e in a.evidence[:SHOWN_EVIDENCE]:
                link = f" <{e.url}>" if e.url else ""
                lines.append(f"    - {e.title} [{e.source}, {e.confidence:.0%}, id {e.id}]{link}")
            rest = [e.id for e in a.evidence[SHOWN_EVIDENCE:]]
            if rest:
                lines.append(f"    - and {len(rest)} more, ids {', '.join(rest)}")
        if any(a.evidence for a in self.alerts):
            lines += ["", FEEDBACK_HINT]
        return "\n".join(lines)

    def to_json(self) -> bytes:
        """The JSON body of the generic webhook (stable key order)."""
        body = {
            "idempotency_key": self.key,
            "title": self.title,
            "group": self.group,
            "created_s": self.created_s,
            "alerts": [
                {**json.loads(a.model_dump_json()), "idempotency_key": idempotency_key(a)}
                for a in self.alerts
            ],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def dumps(self) -> str:
        """Serialise for the outbox (:meth:`loads` reads it back)."""
        return json.dumps(
            {
                "group": self.group,
                "created_s": self.created_s,
                "alerts": [json.loads(a.model_dump_json()) for a in self.alerts],
            },
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str) -> Notification:
        """The notification :meth:`dumps` wrote."""
        data = json.loads(text)
        alerts = tuple(Alert.model_validate(a) for a in data["alerts"])
        return cls(alerts, group=data["group"], created_s=float(data["created_s"]))


class Notifier(Protocol):
    """A channel: ``send`` delivers or raises :class:`~alerts.exceptions.NotifyError`."""

    name: str
    channel_type: str

    def send(self, notification: Notification) -> None:
        """Deliver one notification (blocking; the worker retries on retriable errors)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
