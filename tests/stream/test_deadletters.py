"""Dead letters on the wire: capped by the constructor, checked and retried by the sender."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from stream.contracts.deadletters import dead_letter
from stream.contracts.errors import SchemaError
from stream.contracts.schemas import DeadLetter, decode
from stream.contracts.topics import TopicNames
from stream.deadletters import (
    SAFE_ORIGINAL_BYTES,
    DeadLetterCounter,
    DeadLetterSendError,
    send_dead_letter,
)
from stream.kafka import KafkaSettings, make_consumer, make_producer

T = datetime(2026, 1, 5, tzinfo=UTC)


def _letter(size: int) -> DeadLetter:
    return dead_letter(
        SchemaError("too_large", f"{size} bytes"), stage="archive", failed_at=T,
        original=b"x" * size, key=b"ACME",
    )  # fmt: skip


def test_old_dead_letters_still_decode_and_new_fields_round_trip() -> None:
    old = (
        b'{"schema_version":1,"stage":"score","reason":"empty_text","detail":"d",'
        b'"original_b64":"e30=","failed_at":"2026-01-05T00:00:00Z"}'
    )
    letter = decode(old, DeadLetter)
    assert (letter.truncated, letter.original_bytes, letter.original) == (False, None, b"{}")
    cut = _letter(5_000_000)
    assert cut.truncated and cut.original_bytes == 5_000_000 and len(cut.original) == 700_000


def test_every_stage_shares_one_counter_name() -> None:
    registry = CollectorRegistry()
    DeadLetterCounter(registry, stage="ingest").inc("not-a-reason")
    get = registry.get_sample_value
    labels = {"stage": "ingest", "reason": "processing_error"}
    assert get("finsentinel_deadletters_total", labels) == 1


@pytest.mark.integration
def test_a_letter_too_big_for_the_producer_is_cut_again_and_sent(
    kafka_settings: KafkaSettings, topics: TopicNames
) -> None:
    producer = make_producer(kafka_settings, max_request_size=200_000)
    try:
        sent = send_dead_letter(producer, topics.deadletter, _letter(800_000))
    finally:
        producer.close()
    assert len(sent.original) == SAFE_ORIGINAL_BYTES and sent.original_bytes == 800_000
    consumer = make_consumer(kafka_settings, group_id=None, topics=[topics.deadletter])
    try:
        records: list[bytes] = []
        for _ in range(40):
            for batch in consumer.poll(timeout_ms=500).values():
                records += [r.value for r in batch]
            if records:
                break
    finally:
        consumer.close()
    assert [decode(v, DeadLetter) for v in records] == [sent]


@pytest.mark.integration
def test_a_letter_that_never_fits_stops_the_caller_in_one_line(
    kafka_settings: KafkaSettings, topics: TopicNames
) -> None:
    producer = make_producer(kafka_settings, max_request_size=10_000)
    letter = _letter(800_000).model_copy(
        update={"source_topic": "raw", "partition": 2, "offset": 7}
    )
    try:
        with pytest.raises(DeadLetterSendError) as caught:
            send_dead_letter(producer, topics.deadletter, letter, sleep=lambda s: None)
    finally:
        producer.close()
    message = str(caught.value)
    assert "\n" not in message and "raw[2]@7" in message
    assert "after 3 attempts" in message and "without committing past it" in message
