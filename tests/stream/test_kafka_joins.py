"""A group join that finishes between two polls is applied, not sent again (real Tansu broker)."""

from __future__ import annotations

import time

import pytest
from kafka.coordinator.base import BaseCoordinator

from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_consumer, make_producer
from stream.kafka_joins import keep_finished_joins
from tests.stream.conftest import wait_for

pytestmark = pytest.mark.integration


def test_the_installed_kafka_python_is_patched_or_fixed() -> None:
    patched = keep_finished_joins()
    marker = "_finsentinel_keeps_finished_joins"
    assert patched == getattr(BaseCoordinator.join_group_async, marker, False)
    assert keep_finished_joins() is patched  # idempotent


def test_a_consumer_that_polls_briefly_between_long_pauses_joins_and_reads(
    kafka_settings: KafkaSettings, topics: TopicNames, group_id: str
) -> None:
    # 10 ms polls 0.5 s apart: every join finishes while the consumer's thread is away
    # from poll(). Unpatched, kafka-python 3.0.12 sends a new JoinGroup each time and
    # the member stays unassigned for good (seen under CPU starvation in full runs).
    producer = make_producer(kafka_settings)
    for i in range(5):
        producer.send(topics.scored, key=b"k", value=f"m{i}".encode()).get(timeout=10)
    producer.close()
    consumer = make_consumer(kafka_settings, group_id=group_id, topics=[topics.scored])
    values: list[bytes] = []

    def all_read() -> bool:
        for records in consumer.poll(timeout_ms=10).values():
            values.extend(r.value for r in records)
        time.sleep(0.5)
        return len(values) >= 5

    try:
        read = wait_for(all_read)  # the suite's hang guard, not a speed limit
        assignment = consumer.assignment()
    finally:
        consumer.close()
    assert read, f"{len(values)} of 5 records; assigned: {sorted(assignment)}"
    assert values == [f"m{i}".encode() for i in range(5)]
