"""The alerting service end to end through the real embedded broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alerts.service import AlertService
from alerts.settings import AlertSettings
from alerts.testing import synthetic_stream
from stream.contracts.schemas import Alert, ScoredDocument, decode, encode, message_key
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_consumer, make_producer
from stream.runtime import StopFlag

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _settings(tmp_path: Path, group_id: str, **overrides: object) -> AlertSettings:
    values: dict[str, object] = {
        "db_path": tmp_path / "alerts.sqlite",
        "group_id": group_id,
        "metrics_port": 0,
        "evaluate_interval_s": 0.5,
        "checkpoint_interval_s": 0.5,
        "poll_timeout_s": 0.2,
        "idle_watermark_after_s": None,  # a replay of old history: event time only
        "metric_topics": ("Earnings", "Markets"),
    }
    values.update(overrides)
    return AlertSettings(**values)  # type: ignore[arg-type]


def _produce(kafka: KafkaSettings, topic: str, docs: list[ScoredDocument]) -> None:
    producer = make_producer(kafka)
    for d in docs:
        producer.send(topic, key=message_key(d), value=encode(d))
    producer.send(topic, key=b"x", value=b"not json")  # dead-lettered, not fatal
    producer.flush(timeout=30)
    producer.close()


@contextmanager
def _running(service: AlertService) -> Iterator[StopFlag]:
    stop = StopFlag()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive()


def _wait_for(predicate, timeout_s: float = 60.0, service: AlertService | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            stats = service.stats if service else None
            raise AssertionError(f"condition not reached in time; stats {stats}")
        time.sleep(0.1)


def _consume_alerts(kafka: KafkaSettings, topics: TopicNames, group_id: str) -> list[Alert]:
    consumer = make_consumer(kafka, group_id=group_id + "-reader", topics=[topics.alerts])
    out: list[Alert] = []
    for _ in range(40):
        for records in consumer.poll(timeout_ms=500).values():
            out.extend(decode(r.value, Alert) for r in records)
        if out and not consumer.poll(timeout_ms=500):
            break
    consumer.close()
    return out


def test_burst_fires_once_flat_stays_quiet_and_evidence_is_kept(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    tmp_path: Path,
    registry: CollectorRegistry,
) -> None:
    docs = synthetic_stream(
        start=T0, docs=480, seed=1, burst_topic="Earnings", burst_ticker="ACME", burst_docs=45
    )
    _produce(kafka_settings, topics.scored, docs)
    service = AlertService(
        _settings(tmp_path, group_id), kafka=kafka_settings, topics=topics, registry=registry
    )
    with _running(service):
        _wait_for(lambda: service.stats["accepted"] == len(docs), service=service)
        raised = service.flush()
        body = httpx.get(service.metrics_url + "/metrics").text
        health = httpx.get(service.metrics_url + "/healthz")
        page = httpx.get(service.metrics_url + "/alerts/negative-spike-ticker:ticker:ACME")
    assert health.status_code == 200
    assert page.status_code == 200 and "Profit warning shock" in page.text  # the alert view
    firing = [a for a in service.alerts() if a.state == "firing"]
    assert {(a.rule, a.series) for a in firing} == {
        ("negative-spike-topic", "Earnings"),
        ("negative-spike-ticker", "ACME"),
    }
    assert service.stats["invalid"] == 1 and service.stats["duplicate"] == 0
    stored = service.store.list()
    assert {s.alert.key for s in stored} == {a.key for a in firing}
    earnings = next(a for a in firing if a.series == "Earnings")
    assert earnings.evidence[0].url and earnings.evidence[0].title.startswith("Profit warning")
    on_topic = _consume_alerts(kafka_settings, topics, group_id)
    assert {(a.key, a.state) for a in on_topic} == {(a.key, a.state) for a in service.alerts()}
    assert raised is not None
    assert 'finsentinel_alerts_documents_total{outcome="accepted"} 525.0' in body
    assert 'finsentinel_alerts_transitions_total{state="firing"} 2.0' in body
    assert (
        registry.get_sample_value("finsentinel_alerts_documents_total", {"outcome": "invalid"}) == 1
    )


def test_flat_stream_of_the_same_volume_raises_nothing(
    kafka_settings: KafkaSettings, topics: TopicNames, group_id: str, tmp_path: Path
) -> None:
    docs = synthetic_stream(start=T0, docs=525, seed=1)
    _produce(kafka_settings, topics.scored, docs)
    service = AlertService(_settings(tmp_path, group_id), kafka=kafka_settings, topics=topics)
    with _running(service):
        _wait_for(lambda: service.stats["accepted"] == len(docs))
        service.flush()
    assert service.alerts() == []
    assert service.stats["buckets_closed"] > 200


def test_restart_resumes_without_gap_or_double_count(
    kafka_settings: KafkaSettings, topics: TopicNames, group_id: str, tmp_path: Path
) -> None:
    docs = synthetic_stream(start=T0, docs=480, seed=3, burst_topic="Macro", burst_docs=45)
    half = len(docs) // 2
    _produce(kafka_settings, topics.scored, docs[:half])
    settings = _settings(tmp_path, group_id)
    first = AlertService(settings, kafka=kafka_settings, topics=topics)
    with _running(first):
        _wait_for(lambda: first.stats["accepted"] == half)
    _produce(kafka_settings, topics.scored, docs[half:])
    # A rescored replay of some documents must not double-count either.
    _produce(kafka_settings, topics.scored, docs[:20])
    second = AlertService(settings, kafka=kafka_settings, topics=topics)
    with _running(second):
        _wait_for(lambda: second.stats["accepted"] == len(docs) - half)
        _wait_for(lambda: second.stats["duplicate"] == 20)
        second.flush()
    single = AlertService(
        _settings(tmp_path / "single", group_id + "s"), kafka=kafka_settings, topics=topics
    )
    with _running(single):
        _wait_for(lambda: single.stats["accepted"] == len(docs))
        single.flush()
    both = first.alerts() + second.alerts()
    assert [(a.key, a.state, a.updated_at) for a in both] == [
        (a.key, a.state, a.updated_at) for a in single.alerts()
    ]
    row = second.engine.index.find(("all", "all"))
    assert second.engine.trend(86_400).total[row] == single.engine.trend(86_400).total[row]
