"""The alert ``finsentinel alerts test-notify`` sends: marked as a test everywhere.

Its title starts with ``[TEST]``, it carries the label ``test="true"`` (so
Alertmanager routes and silences can match it), Alertmanager gets an
``endsAt`` a few minutes later so it disappears by itself, its summary says
that nothing fired, and its idempotency key is new on every call (its time is
the moment it was sent), so receivers de-duplicating by key still show it.

>>> from alerts.notify.base import Notification
>>> alert = probe_alert(1_767_600_000.0)
>>> alert.labels["test"], Notification((alert,)).title
('true', '[TEST] [FIRING] info: finsentinel-test-notification on all test')
"""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.notify.base import TEST_LABEL
from stream.contracts.schemas import Alert

__all__ = ["PROBE_RULE", "probe_alert"]

#: The rule name of test notifications (``alertname`` in Alertmanager).
PROBE_RULE = "finsentinel-test-notification"


def probe_alert(now_s: float) -> Alert:
    """A firing test alert stamped ``now_s``; no real condition behind it."""
    at = datetime.fromtimestamp(int(now_s), tz=UTC)
    return Alert(
        key=f"{PROBE_RULE}:all:test",
        rule=PROBE_RULE,
        series_kind="all",
        series="test",
        state="firing",
        severity="info",
        score=0.0,
        observed=0.0,
        baseline=0.0,
        window_start=at,
        window_end=at,
        started_at=at,
        updated_at=at,
        summary=(
            "Test notification sent by `finsentinel alerts test-notify`: no condition fired, "
            "nothing to do. It checks that this channel is configured and reachable."
        ),
        labels={TEST_LABEL: "true", "rule": PROBE_RULE},
    )
