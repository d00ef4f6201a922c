"""A group join that finishes between two polls is applied, not sent again (real Tansu broker)."""

from __future__ import annotations

import time

import pytest
from kafka.coordinator.base import BaseCoordinator

from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_consumer
from stream.kafka_joins import keep_finished_joins
from tests.stream.conftest import send, wait_for

pytestmark = pytest.mark.integration


def test_the_installed_kafka_python_is_patched_or_fixed() -> None:
    patched = keep_finished_joins()
    marker = "_finsentinel_keeps_finished_joins"
    method = BaseCoordinator.join_group_async
    assert patched == getattr(method, marker, False)
    assert keep_finished_joins() is patched
    assert BaseCoordinator.join_group_async is method  # a second call does not wrap it twice


def test_a_consumer_that_polls_briefly_between_long_pauses_joins_and_reads(
    kafka_settings: KafkaSettings, topics: TopicNames, group_id: str
) -> None:
    # 10 ms polls 0.5 s apart: every join finishes while the consumer's thread is away
    # from poll(). Unpatched, kafka-python 3.0.12 sends a new JoinGroup each time and
    # the member stays unassigned for good (seen under CPU starvation in full runs).
    sent = [f"m{i}".encode() for i in range(5)]
    send(kafka_settings, [(topics.scored, b"k", value) for value in sent])
    consumer = make_consumer(kafka_settings, group_id=group_id, topics=[topics.scored])
    got: list[bytes] = []

    def brief_poll_then_pause() -> bool:
        got.extend(r.value for batch in consumer.poll(timeout_ms=10).values() for r in batch)
        time.sleep(0.5)
        return len(got) >= len(sent)

    try:
        joined = wait_for(brief_poll_then_pause)  # the suite's hang guard, not a speed limit
        partitions = sorted(consumer.assignment())
    finally:
        consumer.close()
    assert joined, f"{len(got)} of {len(sent)} records; assigned: {partitions}"
    assert got == sent
