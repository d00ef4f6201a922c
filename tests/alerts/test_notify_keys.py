"""Idempotency keys: stable for one transition, different for every other one."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from alerts.notify.alertmanager import AlertmanagerNotifier, alertmanager_alert
from alerts.notify.base import Notification
from alerts.notify.email import email_message
from alerts.notify.keys import HEADER, idempotency_key, notification_key
from alerts.notify.slack import slack_payload
from alerts.notify.webhook import WebhookNotifier
from alerts.testing import sample_alert
from stream.contracts.schemas import Alert

from .conftest import SECRET, Receiver

HOUR = timedelta(hours=1)


def test_the_key_is_pinned_so_receivers_keep_deduplicating_across_versions() -> None:
    # A receiver stores keys; a release that changed them would re-deliver everything.
    assert idempotency_key(sample_alert()) == "fs1-2ee8ac9efa00f4b64827219f23ca72fe"


def test_the_key_survives_a_json_round_trip_and_ignores_what_a_replay_may_change() -> None:
    alert = sample_alert()
    again = Alert.model_validate_json(alert.model_dump_json())
    replayed = alert.model_copy(
        update={
            "score": 0.51,
            "observed": 99,
            "baseline": 7.0,
            "summary": "other words",
            "evidence": alert.evidence[:1],
            "labels": {**alert.labels, "team": "risk"},
            "window_start": alert.window_start - timedelta(minutes=5),
        }
    )
    assert idempotency_key(again) == idempotency_key(replayed) == idempotency_key(alert)


def test_every_part_of_the_transition_changes_the_key() -> None:
    alert = sample_alert()
    variants = [
        alert,
        alert.model_copy(update={"rule": "other-rule"}),
        alert.model_copy(update={"series": "Legal"}),
        alert.model_copy(update={"series_kind": "source"}),
        alert.model_copy(update={"state": "updated"}),
        alert.model_copy(update={"state": "resolved", "resolved_at": alert.updated_at}),
        alert.model_copy(update={"updated_at": alert.updated_at + timedelta(minutes=1)}),
    ]
    assert len({idempotency_key(a) for a in variants}) == len(variants)


def test_a_group_key_depends_on_its_members_not_their_order() -> None:
    a = sample_alert(key="r:ticker:JPM", series="JPM", series_kind="ticker")
    b = sample_alert(key="r:ticker:BAC", series="BAC", series_kind="ticker")
    assert notification_key([a, b]) == notification_key([b, a])
    assert notification_key([a, b]).startswith("fs1g-")
    assert notification_key([a, b]) not in (notification_key([a]), notification_key([b]))
    assert notification_key([a]) == idempotency_key(a)


def test_every_channel_carries_the_key(receiver: Receiver) -> None:
    n = Notification((sample_alert(),), created_s=1.0)
    body = json.loads(n.to_json())
    assert body["idempotency_key"] == n.key
    assert body["alerts"][0]["idempotency_key"] == idempotency_key(n.first)
    assert email_message(n, sender="a@b.test", to=["c@d.test"])["Message-ID"] == (
        f"<{n.key}@finsentinel.alerts>"
    )
    assert n.key in json.dumps(slack_payload(n))
    assert alertmanager_alert(n.first)["annotations"]["idempotency_key"] == n.key
    notifier = WebhookNotifier(
        "ops", receiver.url, secret=SecretStr(SECRET.decode()), client=httpx.Client(), clock=float
    )
    receiver.tolerance_s = float("inf")
    notifier.send(n)
    notifier.send(n)  # a re-send: same key, same body (the signature's timestamp may differ)
    notifier.close()
    assert [h[HEADER] for h in receiver.headers] == [n.key, n.key]
    assert receiver.bodies[0] == receiver.bodies[1]


def test_alertmanager_labels_are_the_same_for_every_state_and_resend() -> None:
    # Alertmanager identifies an alert by its label set: a re-send must not look new, and
    # the resolution must carry the firing's labels or it would resolve nothing.
    firing = sample_alert(labels={"sector": "banks", "team": "risk"})
    updated = firing.model_copy(
        update={"state": "updated", "score": 0.99, "updated_at": firing.updated_at + timedelta(1)}
    )
    resolved = firing.model_copy(update={"state": "resolved", "resolved_at": firing.updated_at})
    labels = [alertmanager_alert(a)["labels"] for a in (firing, firing, updated, resolved)]
    assert all(lab == labels[0] for lab in labels)
    assert "idempotency_key" not in labels[0] and "state" not in labels[0]


@pytest.mark.integration
def test_a_resent_alert_stays_one_alert_in_a_real_alertmanager(alertmanager: str) -> None:
    notifier = AlertmanagerNotifier("am", alertmanager, client=httpx.Client())
    alert = sample_alert(key="negative-spike-topic:topic:Resent", series="Resent")
    later = alert.model_copy(update={"state": "updated", "updated_at": alert.updated_at + HOUR})
    for a in (alert, alert, later):  # a crash re-send, then an update
        notifier.send(Notification((a,)))
    notifier.close()
    got = httpx.get(f"{alertmanager}/api/v2/alerts", params={"filter": 'series="Resent"'}).json()
    assert len(got) == 1
    assert got[0]["annotations"]["idempotency_key"] == idempotency_key(later)
