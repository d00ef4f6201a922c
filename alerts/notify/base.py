"""What a notification is and how channels render it.

A :class:`Notification` carries one alert, or several alerts of one group
(e.g. many tickers of one sector firing within the group window).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from stream.contracts.schemas import Alert

__all__ = ["Notification", "Notifier"]


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
        return f"[{a.state.upper()}] {a.severity}: {a.rule} on {what}"

    def text(self) -> str:
        """Plain-text body: each alert's summary and its top headlines."""
        lines = [self.title, ""]
        for a in self.alerts:
            lines.append(f"* {a.summary} (score {a.score:.2f}, key {a.key})")
            for e in a.evidence[:3]:
                link = f" <{e.url}>" if e.url else ""
                lines.append(f"    - {e.title} [{e.source}, {e.confidence:.0%}]{link}")
        return "\n".join(lines)

    def to_json(self) -> bytes:
        """The JSON body of the generic webhook (stable key order)."""
        body = {
            "title": self.title,
            "group": self.group,
            "created_s": self.created_s,
            "alerts": [json.loads(a.model_dump_json()) for a in self.alerts],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


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
