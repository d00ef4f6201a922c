"""Delivery on the real broker: oversized outputs become dead letters, never a stuck batch."""

from __future__ import annotations

from typing import Any

import pytest

from stream.contracts.schemas import DeadLetter, ScoredDocument, decode, encode
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_producer
from stream.scorer.batch import BatchScorer
from stream.scorer.service import ScorerService
from stream.scorer.settings import ScorerSettings

pytestmark = pytest.mark.integration


class Rec:
    """A consumer record as the scorer sees it."""

    def __init__(self, topic: str, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = (
            topic,
            0,
            offset,
            b"K",
            value,
        )


def test_a_scored_document_too_big_for_the_producer_is_dead_lettered(
    kafka_settings: KafkaSettings, topics: TopicNames, tiny_classifier: Any, kit: Any
) -> None:
    big = kit.raw_doc(1).model_copy(update={"body": "Revenue rose. " * 10_000})  # ~140 kB
    small = kit.raw_doc(2)
    records = [Rec(topics.raw_news, 0, encode(big)), Rec(topics.raw_news, 1, encode(small))]
    scorer = BatchScorer(tiny_classifier, clock=lambda: kit.T0, max_document_tokens=50_000)
    outcomes = scorer.score(records).outcomes
    assert all(o.scored is not None for o in outcomes)
    service = ScorerService(
        ScorerSettings(metrics_port=0), kafka=kafka_settings, topics=topics, clock=lambda: kit.T0
    )
    producer = make_producer(kafka_settings, max_request_size=100_000)
    try:
        delivered = service._deliver(producer, outcomes)
    finally:
        producer.close()
    assert delivered[0].dead is not None and delivered[0].dead.reason == "too_large"
    assert delivered[1].scored is not None
    (letter,) = [
        decode(r.value, DeadLetter) for r in kit.read_topic(kafka_settings, topics.deadletter, 1)
    ]
    assert letter.original == encode(big)[:65_536]
    assert f"{topics.raw_news}[0]@0" in letter.detail
    (scored,) = [
        decode(r.value, ScoredDocument) for r in kit.read_topic(kafka_settings, topics.scored, 1)
    ]
    assert scored.id == small.id
