"""The embedded broker and the Kafka helpers, against the real Tansu binary."""

from __future__ import annotations

import gc
import logging
import time

import pytest
from pydantic import SecretStr

from stream.broker import EmbeddedBroker
from stream.contracts.errors import BrokerError, ConfigError
from stream.contracts.topics import TopicNames
from stream.kafka import (
    KafkaSettings,
    ensure_topics,
    kafka_connection,
    make_consumer,
    make_producer,
)
from tests.stream.conftest import wait_for

pytestmark = pytest.mark.integration


def test_produce_and_consume_through_session_broker(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
) -> None:
    producer = make_producer(kafka_settings)
    for i in range(5):
        producer.send(topics.scored, key=b"k", value=f"m{i}".encode()).get(timeout=10)
    producer.close()
    consumer = make_consumer(kafka_settings, group_id=group_id, topics=[topics.scored])
    values: list[bytes] = []

    def all_read() -> bool:
        for records in consumer.poll(timeout_ms=200).values():
            values.extend(r.value for r in records)
        return len(values) >= 5

    # The group join comes first (~3 s); the suite's hang guard, not a speed limit, bounds
    # the wait. This test once found kafka-python 3.0.12 discarding joins that finish
    # between polls (see stream.kafka_joins and test_kafka_joins.py).
    started = time.monotonic()
    read = wait_for(all_read)
    waited, assignment = time.monotonic() - started, consumer.assignment()
    consumer.close()
    assert read, f"{len(values)} of 5 records in {waited:.0f} s; assigned: {sorted(assignment)}"
    assert values == [f"m{i}".encode() for i in range(5)]  # one key, one partition: in order


def test_embedded_broker_starts_and_stops() -> None:
    broker = EmbeddedBroker().start()
    assert broker.running
    assert broker.port > 0
    broker.stop()
    assert not broker.running
    broker.stop()  # idempotent


def test_kafka_connection_refuses_to_start_a_broker_unless_allowed() -> None:
    with (
        pytest.raises(ConfigError, match=r"set KAFKA_BOOTSTRAP_SERVERS.*--embedded-broker"),
        kafka_connection(KafkaSettings(bootstrap_servers=None)),
    ):
        pytest.fail("the block must not run without a broker")


def test_kafka_connection_passes_configured_servers_through(
    broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    configured = KafkaSettings(bootstrap_servers=broker)
    for allow_embedded in (False, True):
        caplog.clear()
        with (
            caplog.at_level(logging.WARNING, logger="stream.kafka"),
            kafka_connection(configured, allow_embedded=allow_embedded) as settings,
        ):
            assert settings is configured
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        if not allow_embedded:
            assert warnings == []
        else:  # the flag must not send trial data to a real cluster unnoticed
            assert len(warnings) == 1, warnings
            assert "--embedded-broker is ignored" in warnings[0]
            assert f"KAFKA_BOOTSTRAP_SERVERS={broker} is set" in warnings[0]


def test_kafka_connection_starts_embedded_when_allowed_and_warns(
    broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="stream.kafka"),
        kafka_connection(KafkaSettings(bootstrap_servers=None), allow_embedded=True) as settings,
    ):
        assert settings.bootstrap_servers and settings.bootstrap_servers != broker
        ensure_topics(settings, ["embedded-check"], partitions=1)  # it answers
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert settings.bootstrap_servers in warnings[0].getMessage()
    assert "data is lost on exit" in warnings[0].getMessage()


# kafka-python leaks its wakeup socketpair when bootstrapping fails; collect it here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_unreachable_broker_is_a_retriable_broker_error() -> None:
    settings = KafkaSettings(
        bootstrap_servers="127.0.0.1:1", request_timeout_ms=1_000, bootstrap_timeout_ms=1_000
    )
    with pytest.raises(BrokerError) as info:
        make_producer(settings)
    assert info.value.retriable
    gc.collect()


def test_sasl_settings_are_checked_at_start_up() -> None:
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME"):
        KafkaSettings(
            bootstrap_servers="k:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512"
        )
    ok = KafkaSettings(
        bootstrap_servers="k:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password=SecretStr("s3cret"),
    )
    assert ok.client_kwargs()["sasl_plain_password"] == "s3cret"
    assert "s3cret" not in repr(ok)
