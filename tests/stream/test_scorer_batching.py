"""Micro-batch boundaries (size and wait) on a real consumer of the embedded broker."""

from __future__ import annotations

from typing import Any

import pytest

from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_consumer
from stream.runtime import StopFlag
from stream.scorer.batching import BatchCollector

pytestmark = pytest.mark.integration


class SteppedClock:
    """A monotonic clock that jumps ``step_s`` on every reading (deterministic deadlines)."""

    def __init__(self, step_s: float) -> None:
        self.now = 0.0
        self.step_s = step_s

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


def test_batches_stop_at_max_size_and_at_max_wait(
    kafka_settings: KafkaSettings, topics: TopicNames, group_id: str, kit: Any
) -> None:
    kit.send_docs(kafka_settings, topics, [kit.raw_doc(i) for i in range(10)])
    consumer = make_consumer(
        kafka_settings, group_id=group_id, topics=[topics.raw_news], max_poll_records=4
    )
    stop = StopFlag()
    try:
        # A long wait: with 10 records available, batches close on size, at exactly 4.
        by_size = BatchCollector(consumer, max_size=4, max_wait_ms=60_000, idle_poll_ms=200)
        batches = []
        while len(batches) < 2:
            batch = by_size.collect(stop)
            if batch:
                batches.append(batch)
        assert [len(b) for b in batches] == [4, 4]
        # The wait expires after the first poll: the batch closes with what it has.
        by_wait = BatchCollector(
            consumer, max_size=100, max_wait_ms=1_000, monotonic=SteppedClock(step_s=5.0)
        )
        last = by_wait.collect(stop)
        assert 1 <= len(last) <= 2
        while sum(len(b) for b in batches) + len(last) < 10:
            last += by_wait.collect(stop)
    finally:
        consumer.close()
    records = [r for b in [*batches, last] for r in b]
    assert sorted(r.value for r in records) == sorted(
        r.value for r in kit.read_topic(kafka_settings, topics.raw_news, 10)
    )
    for partition in {r.partition for r in records}:
        offsets = [r.offset for r in records if r.partition == partition]
        assert offsets == sorted(offsets) == list(range(offsets[0], offsets[0] + len(offsets)))


def test_an_idle_poll_returns_an_empty_batch_so_stop_is_noticed(
    kafka_settings: KafkaSettings, topics: TopicNames, group_id: str
) -> None:
    consumer = make_consumer(kafka_settings, group_id=group_id, topics=[topics.raw_news])
    try:
        collector = BatchCollector(consumer, max_size=10, max_wait_ms=50, idle_poll_ms=50)
        assert collector.collect(StopFlag()) == []
    finally:
        consumer.close()


def test_max_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_size"):
        BatchCollector(object(), max_size=0, max_wait_ms=10)  # type: ignore[arg-type]
