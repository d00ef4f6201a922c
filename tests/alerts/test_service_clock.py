"""The service's clock-driven parts with an injected clock, no Kafka loop: the live idle
watermark, future documents, silences and notifications through a real HTTP receiver."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from alerts.rules import parse_rules
from alerts.service import AlertService
from alerts.settings import AlertSettings
from alerts.testing import scored, synthetic_stream
from stream.kafka import KafkaSettings

from .conftest import SECRET, Receiver

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


class FakeClock:
    """Wall clock under test control (the service never sleeps on it)."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now


def _service(tmp_path: Path, clock: FakeClock, rules_text: str, **kw: object) -> AlertService:
    settings = AlertSettings(
        db_path=tmp_path / "alerts.sqlite",
        metrics_port=0,
        group_wait_s=0,
        **kw,  # type: ignore[arg-type]
    )
    return AlertService(
        settings,
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),  # run() is not called here
        registry=CollectorRegistry(),
        clock=clock,
        rules=parse_rules(rules_text),
        env={"HOOK_SECRET": SECRET.decode()},
    )


RULES = """
rules:
  - {{name: neg, series: {{kind: topic}}, min_history: 30m, hold: 2m, clear: 10m}}
channels:
  - {{name: hook, type: webhook, url: "{url}", secret_env: HOOK_SECRET,
      rate_limit_per_minute: 6000}}
"""


def _live_replay(service: AlertService, clock: FakeClock, docs: list) -> None:
    """Feed documents as a live stream would: the wall clock follows event time."""
    for doc in docs:
        clock.now = max(clock.now, doc.published_at.timestamp() + 1)
        service.add(doc)
        service.evaluate_now()


def test_quiet_live_stream_closes_buckets_on_the_wall_clock(
    tmp_path: Path, receiver: Receiver
) -> None:
    clock = FakeClock(T0)
    receiver.tolerance_s = math.inf  # notifications carry the simulated time
    service = _service(tmp_path, clock, RULES.format(url=receiver.url))
    service.dispatcher.start()
    try:
        docs = synthetic_stream(start=T0, hours=3, docs=360, seed=2, burst_topic="Legal")
        docs = [
            d for d in docs if d.published_at < T0 + timedelta(minutes=110)
        ]  # ends in the burst
        burst_end = max(d.published_at for d in docs)
        _live_replay(service, clock, docs)
        firing = [a for a in service.alerts() if a.state == "firing"]
        assert [a.series for a in firing] == ["Legal"]
        # The stream stops. Nothing happens until it has been quiet for the idle time...
        clock.now = burst_end.timestamp() + 30
        service.evaluate_now()
        assert [a.state for a in service.alerts()] == ["firing"]
        # ...then the watermark follows the wall clock and the alert resolves.
        clock.now = burst_end.timestamp() + 61 + 15 * 60
        service.evaluate_now()
        assert [a.state for a in service.alerts()] == ["firing", "resolved"]
        deadline = time.monotonic() + 20
        while len(receiver.bodies) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        service.dispatcher.stop()
        service.close()
    assert len(receiver.bodies) == 2 and all(receiver.signatures_ok)


def test_replayed_history_never_uses_the_wall_clock(tmp_path: Path, receiver: Receiver) -> None:
    clock = FakeClock(T0 + timedelta(days=30))  # history a month old
    service = _service(tmp_path, clock, RULES.format(url=receiver.url))
    docs = synthetic_stream(start=T0, hours=1, docs=60, seed=3)
    for doc in docs:
        service.add(doc)
    clock.now += 3600  # long quiet on the wall clock
    service.evaluate_now()
    last = max(d.published_at for d in docs)
    # Still open: event time alone decides, the wall clock does not close old history.
    assert service.add(scored("slow", last - timedelta(seconds=30))) == "accepted"
    assert service.stats["late"] == 0
    service.close()


def test_future_documents_are_rejected_and_reported(tmp_path: Path, receiver: Receiver) -> None:
    clock = FakeClock(T0)
    service = _service(tmp_path, clock, RULES.format(url=receiver.url), max_future_s=300)
    assert service.add(scored("f1", T0 + timedelta(hours=2))) == "future"
    assert service.add(scored("ok", T0 + timedelta(minutes=4))) == "accepted"
    assert service.late_documents() == [("future", "f1", (T0 + timedelta(hours=2)).isoformat())]
    assert service.metrics.documents.labels("future")._value.get() == 1
    service.close()


@pytest.mark.parametrize("pattern", ["neg:topic:Legal", "neg:*"])
def test_silenced_alerts_are_stored_but_not_notified(
    tmp_path: Path, receiver: Receiver, pattern: str
) -> None:
    clock = FakeClock(T0)
    service = _service(tmp_path, clock, RULES.format(url=receiver.url))
    service.store.add_silence(pattern, until_s=clock.now + 86_400, reason="test", now_s=clock.now)
    service.dispatcher.start()
    try:
        _live_replay(
            service,
            clock,
            synthetic_stream(start=T0, hours=3, docs=360, seed=2, burst_topic="Legal"),
        )
        service.flush()
    finally:
        service.dispatcher.stop()
    stored = service.store.list()
    assert stored and all(s.silenced for s in stored)
    assert receiver.attempts == 0
    silenced = service.registry.get_sample_value(
        "finsentinel_alerts_notifications_total", {"channel_type": "webhook", "outcome": "silenced"}
    )
    assert silenced is not None and silenced >= 1
    service.close()
