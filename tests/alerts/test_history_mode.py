"""History mode and fresh-state positioning through the real embedded broker (issue 18, 1).

A back-fill reaches the alerts service days after it was published and out of
order by more than the live lateness (the scorer merges partitions). Live mode
drops part of it as late and never moves its watermark; ``history=True`` counts
it all, flushes when the input ends and raises what a live run would have.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from alerts.service import AlertService
from alerts.settings import AlertSettings
from alerts.testing import synthetic_stream
from stream.contracts.schemas import ScoredDocument, encode, message_key
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_producer
from tests.alerts.test_service import _running, _wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # long before the wall clock: history


def _disordered(docs: list[ScoredDocument], seed: int = 7) -> list[ScoredDocument]:
    """The arrival order of a back-fill: event time jittered by up to 40 minutes."""
    rng = random.Random(seed)
    return sorted(docs, key=lambda d: d.published_at + timedelta(minutes=rng.uniform(0, 40)))


def _produce(kafka: KafkaSettings, topic: str, docs: list[ScoredDocument]) -> None:
    producer = make_producer(kafka)
    for d in docs:
        producer.send(topic, key=message_key(d), value=encode(d))
    producer.flush(timeout=30)
    producer.close()


def _service(
    kafka: KafkaSettings, topics: TopicNames, db: Path, group_id: str, **settings: object
) -> AlertService:
    return AlertService(
        AlertSettings(db_path=db, group_id=group_id, metrics_port=0, **settings),  # type: ignore[arg-type]
        kafka=kafka,
        topics=topics,
        registry=CollectorRegistry(),
    )


@pytest.fixture
def backfill(kafka_settings: KafkaSettings, topics: TopicNames) -> list[ScoredDocument]:
    docs = synthetic_stream(
        start=T0, docs=480, seed=3, burst_topic="Earnings", burst_ticker="ACME", burst_docs=45
    )
    _produce(kafka_settings, topics.scored, _disordered(docs))
    return docs


def test_history_mode_counts_a_disordered_backfill_and_flushes_at_its_end(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    tmp_path: Path,
    backfill: list[ScoredDocument],
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = _service(
        kafka_settings, topics, tmp_path / "a.sqlite", group_id, history=True,
        history_end_after_s=1.0,
    )  # fmt: skip
    with caplog.at_level(logging.INFO), _running(service):
        _wait_for(lambda: service.stats["accepted"] == len(backfill), service=service)
        _wait_for(lambda: any("history input quiet" in r.getMessage() for r in caplog.records))
    stats = service.stats
    assert (stats["late"], stats["future"]) == (0, 0)
    firing = {(a.rule, a.series) for a in service.alerts() if a.state == "firing"}
    assert ("negative-spike-ticker", "ACME") in firing
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith("history mode: the watermark follows event time only") for m in messages
    )
    assert not [m for m in messages if "looks like a back-fill" in m]


def test_live_mode_says_the_input_looks_like_history(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    tmp_path: Path,
    backfill: list[ScoredDocument],
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = _service(kafka_settings, topics, tmp_path / "a.sqlite", group_id)
    with caplog.at_level(logging.INFO), _running(service):
        _wait_for(
            lambda: sum(service.stats[k] for k in ("accepted", "late")) == len(backfill),
            service=service,
        )
    assert service.stats["late"] > 0  # what a back-fill loses in live mode
    hints = [r for r in caplog.records if "looks like a back-fill" in r.getMessage()]
    assert len(hints) == 1 and hints[0].levelno == logging.WARNING
    assert "--history" in hints[0].getMessage()


def test_a_fresh_database_over_committed_offsets_warns_and_can_start_from_the_beginning(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    tmp_path: Path,
    backfill: list[ScoredDocument],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = _service(kafka_settings, topics, tmp_path / "first.sqlite", group_id, history=True)
    with _running(first):
        _wait_for(lambda: first.stats["accepted"] == len(backfill), service=first)
    # The group has committed offsets now; a fresh database resumes there, and says so.
    again = _service(kafka_settings, topics, tmp_path / "again.sqlite", group_id, history=True)
    with caplog.at_level(logging.INFO), _running(again):
        _wait_for(lambda: again.ready)
    warnings = [r for r in caplog.records if "fresh state" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "--from-beginning" in warnings[0].getMessage()
    for (_topic, partition), offset in first._offsets.items():  # resumed where first stopped
        assert f"{partition}@{offset}" in warnings[0].getMessage()
    caplog.clear()
    fresh = _service(
        kafka_settings, topics, tmp_path / "fresh.sqlite", group_id, history=True,
        from_beginning=True,
    )  # fmt: skip
    with caplog.at_level(logging.INFO), _running(fresh):
        _wait_for(lambda: fresh.stats["accepted"] == len(backfill), service=fresh)
    assert not [
        r for r in caplog.records if r.levelno >= logging.WARNING and "fresh" in r.getMessage()
    ]
