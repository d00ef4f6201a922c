"""Prometheus Alertmanager v2 API, so users keep their silences and receivers.

Each alert becomes one Alertmanager alert: labels identify it (``alertname`` =
rule, ``key``, series, severity, rule labels), annotations carry the summary,
the headlines with their document ids and ``evidence_ids`` (every evidence
document's id, comma-separated, for ``finsentinel feedback add``). ``startsAt``
is when it fired and ``endsAt`` is set when it resolved. Alertmanager resolves
alerts it has not heard of for its ``resolve_timeout`` (5 min by default), so the
service re-sends firing alerts (``updated`` events and the periodic re-send of
open alerts).

Alertmanager de-duplicates by the label set: the labels of one alert are the
same on every state and every re-send (nothing that changes, such as state,
score or the idempotency key, is a label; the key is an annotation and the
``Idempotency-Key`` header). A test notification (label ``test="true"``) gets
an ``endsAt`` :data:`TEST_ENDS_AFTER` after it was sent, so it disappears.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx

from alerts.notify.base import Notification, is_test
from alerts.notify.http import post
from alerts.notify.keys import HEADER as IDEMPOTENCY_HEADER
from alerts.notify.keys import idempotency_key
from stream.contracts.schemas import Alert

__all__ = ["TEST_ENDS_AFTER", "AlertmanagerNotifier", "alertmanager_alert"]

#: How long a test notification stays active in Alertmanager.
TEST_ENDS_AFTER = timedelta(minutes=5)


def alertmanager_alert(alert: Alert, *, generator_url: str | None = None) -> dict[str, Any]:
    """The v2 ``postableAlert`` for ``alert``.

    >>> from alerts.testing import sample_alert
    >>> am = alertmanager_alert(sample_alert())
    >>> am["labels"]["alertname"], "endsAt" in am
    ('negative-spike-topic', False)
    >>> am["annotations"]["evidence_ids"]
    'e0,e1'
    """
    labels = {k: v for k, v in alert.labels.items() if k.isidentifier()}
    labels.update(
        alertname=alert.rule,
        key=alert.key,
        series_kind=alert.series_kind,
        series=alert.series,
        severity=alert.severity,
    )
    headlines = "\n".join(
        f"- {e.title} ({e.url or e.source}) [id {e.id}]" for e in alert.evidence[:5]
    )
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": {
            "summary": alert.summary,
            "description": headlines,
            "score": f"{alert.score:.3f}",
            "observed": f"{alert.observed:g}",
            "baseline": f"{alert.baseline:g}",
            "idempotency_key": idempotency_key(alert),
            "evidence_ids": ",".join(e.id for e in alert.evidence),
        },
        "startsAt": alert.started_at.isoformat(),
    }
    if alert.resolved_at is not None:
        body["endsAt"] = alert.resolved_at.isoformat()
    elif is_test(alert):
        body["endsAt"] = (alert.updated_at + TEST_ENDS_AFTER).isoformat()
    if generator_url:
        body["generatorURL"] = generator_url
    return body


class AlertmanagerNotifier:
    """POST alerts to ``<url>/api/v2/alerts``."""

    channel_type = "alertmanager"

    def __init__(
        self, name: str, url: str, *, client: httpx.Client, generator_url: str | None = None
    ) -> None:
        self.name = name
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self._client = client
        self._generator_url = generator_url

    def send(self, notification: Notification) -> None:
        """Deliver one notification (every alert in it)."""
        body = [
            alertmanager_alert(a, generator_url=self._generator_url) for a in notification.alerts
        ]
        post(
            self._client,
            self.url,
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", IDEMPOTENCY_HEADER: notification.key},
            what=f"alertmanager {self.name}",
        )

    def close(self) -> None:
        """Release connections."""
        self._client.close()
