"""The breadth feed outlives a broker error: it reconnects and reads the topic again.

Real broker (the session's Tansu, or FINSENTINEL_TEST_KAFKA). The error is the
one the feed's own code path raises when a dead letter is never acknowledged
(a ``BrokerError`` from the dead-letter callback): a broker that drops the
feed's connection cannot be staged here without stopping the session broker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kafka import TopicPartition
from prometheus_client import CollectorRegistry

from alerts.breadth import BreadthBook, BreadthFeed
from stream.contracts.errors import BrokerError, SchemaError
from stream.contracts.schemas import StoryBreadth, encode
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_producer

T = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"not reached: {what}"
        time.sleep(0.05)


def test_feed_reconnects_after_an_error_and_rebuilds_the_book(
    kafka_settings: KafkaSettings, topics: TopicNames, registry: CollectorRegistry
) -> None:
    producer = make_producer(kafka_settings)
    # Same key, same partition: the bad record comes before the update.
    producer.send(topics.breadth, key=b"d1", value=b"not json")
    update = StoryBreadth(document_id="d1", copies=3, outlets=["wire", "a", "b"], updated_at=T)
    producer.send(topics.breadth, key=b"d1", value=encode(update))
    producer.flush(timeout=30)
    producer.close()

    dead: list[str] = []

    def dead_letter(tp: TopicPartition, record: Any, exc: SchemaError) -> None:
        if not dead:
            dead.append("unacknowledged")
            raise BrokerError("dead-letter topic did not acknowledge")
        dead.append(record.value.decode())

    book = BreadthBook(registry=registry)
    feed = BreadthFeed(
        kafka_settings,
        topics.breadth,
        book,
        dead_letter=dead_letter,
        poll_timeout_s=0.2,
        retry_s=0.1,
        registry=registry,
    ).start()

    def sample(name: str, labels: dict[str, str] | None = None) -> float | None:
        return registry.get_sample_value(name, labels)

    try:
        _wait_for(lambda: book.story("d1") is not None, "the update read after the reconnect")
        assert book.story("d1") == (3, ["wire", "a", "b"])
        assert dead == ["unacknowledged", "not json"]  # the bad record is dead-lettered after all
        assert sample("finsentinel_alerts_breadth_feed_errors_total") == 1.0
        _wait_for(lambda: sample("finsentinel_alerts_breadth_feed_up") == 1.0, "feed up")
    finally:
        feed.stop()
    assert sample("finsentinel_alerts_breadth_feed_up") == 0.0
    assert sample("finsentinel_alerts_breadth_updates_total", {"outcome": "widened"}) == 1.0
