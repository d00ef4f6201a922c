"""Idempotency keys: one stable key per alert transition, so receivers can de-duplicate.

Delivery is at-least-once (a crash between sending and recording the delivery
sends it again after the restart), so every delivery carries a key that is the
same on every re-send and different for every other transition. The key of a
transition is derived from what identifies it and nothing else:

    ``fs1-`` + the first 32 hex digits of SHA-256 of the JSON array
    ``[rule, series_kind, series, state, updated_at as Unix seconds]``
    (compact separators, UTF-8, no ASCII escaping).

Score, evidence, summary and labels do not enter it: a replay after a crash
may pick other headlines of equal weight, it is still the same transition. A
notification of several alerts (a ``group_by`` group) has the key
``fs1g-`` + 32 hex digits of SHA-256 of its members' keys, sorted, one per line.

>>> from alerts.testing import sample_alert
>>> idempotency_key(sample_alert())
'fs1-2ee8ac9efa00f4b64827219f23ca72fe'
>>> idempotency_key(sample_alert(state="resolved")) != idempotency_key(sample_alert())
True
>>> notification_key([sample_alert()]) == idempotency_key(sample_alert())
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from stream.contracts.schemas import Alert

__all__ = ["HEADER", "idempotency_key", "notification_key"]

#: The HTTP header carrying the key (webhook, Slack, Alertmanager requests).
HEADER = "Idempotency-Key"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def idempotency_key(alert: Alert) -> str:
    """The key of one transition: (rule, series kind, series, state, transition time)."""
    material = [
        alert.rule,
        alert.series_kind,
        alert.series,
        alert.state,
        int(alert.updated_at.timestamp()),
    ]
    return "fs1-" + _digest(json.dumps(material, separators=(",", ":"), ensure_ascii=False))


def notification_key(alerts: Sequence[Alert]) -> str:
    """The key of a notification: its alert's key, or a digest of a group's member keys."""
    if len(alerts) == 1:
        return idempotency_key(alerts[0])
    return "fs1g-" + _digest("\n".join(sorted(idempotency_key(a) for a in alerts)))
