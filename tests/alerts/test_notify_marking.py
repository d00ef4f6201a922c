"""What a receiver sees: ``alerts test-notify`` is marked as a test on every channel (a real
Alertmanager 0.25 and a webhook), and a resolved alert's score is a plain 0.0."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from alerts.cli import register
from alerts.lifecycle import Observation, RuleTracker
from alerts.notify.alertmanager import TEST_ENDS_AFTER
from alerts.notify.base import Notification
from alerts.rules import parse_rules

from .conftest import Receiver

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """FinSentinel (test root)."""

    register(app)
    return app


@pytest.mark.integration
def test_test_notify_is_marked_as_a_test_everywhere(
    alertmanager: str, receiver: Receiver, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules: [{name: negative-spike-topic, series: {kind: topic}}]\nchannels:\n"
        f"  - {{name: am, type: alertmanager, url: '{alertmanager}'}}\n"
        f"  - {{name: hook, type: webhook, url: '{receiver.url}'}}\n",
        encoding="utf-8",
    )
    for channel in ("hook", "am"):
        result = runner.invoke(_app(), ["alerts", "test-notify", channel, "--rules", str(rules)])
        assert result.exit_code == 0, result.output
        assert "marked test" in result.output
    body = json.loads(receiver.bodies[0])
    assert body["title"].startswith("[TEST] ")
    assert body["alerts"][0]["labels"]["test"] == "true"
    assert "test notification" in body["alerts"][0]["summary"].lower()
    got = httpx.get(f"{alertmanager}/api/v2/alerts", params={"filter": 'test="true"'}).json()
    assert len(got) == 1
    am = got[0]
    assert am["labels"]["test"] == "true"
    assert am["labels"]["alertname"] == "finsentinel-test-notification"
    assert "negative" not in am["annotations"]["summary"].lower()
    starts, ends = (datetime.fromisoformat(am[k]) for k in ("startsAt", "endsAt"))
    assert ends - starts == TEST_ENDS_AFTER  # it disappears by itself
    assert timedelta(minutes=5) >= TEST_ENDS_AFTER


def test_a_resolved_alert_carries_score_zero_not_minus_zero() -> None:
    rule = parse_rules("rules: [{name: neg, series: {kind: topic}}]").rules[0]
    tracker = RuleTracker(
        rule,
        key_of=lambda row: ("topic", "Legal"),
        labels_of=lambda kind, value: {},
        evidence_of=lambda row, since: [],
    )

    def obs(end_s: int, active: bool, score: float) -> Observation:
        one = np.ones(1)
        return Observation(end_s, np.array([active]), np.array([score]), one, one, one, one)

    assert [a.state for a in tracker.step(obs(60, True, 0.9))] == ["firing"]
    # A tail probability of 1 scores log10(1) / log10(full_at_p) = -0.0.
    (resolved,) = tracker.step(obs(120, False, float(np.log10(1.0) / np.log10(1e-8))))
    assert resolved.state == "resolved"
    assert '"score":0.0' in Notification((resolved,)).to_json().decode()
    assert str(resolved.score) == "0.0"
