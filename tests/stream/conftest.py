"""Fixtures for the scorer tests: a loaded tiny classifier, raw documents, topic readers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from stream.contracts.schemas import RawDocument, encode, message_key
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_producer
from stream.runtime import StopFlag
from tests.stream.settings_kit import scorer_settings

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


@pytest.fixture(scope="session")
def tiny_classifier(tiny_model_dir: Path) -> Any:
    """The tiny model loaded on CPU with one thread (the machine is shared)."""
    from models.scoring import Classifier

    return Classifier.load(tiny_model_dir, provider="cpu", intra_op_threads=1)


def raw_doc(i: int, *, ticker: str = "ACME", kind: str = "news", title: str = "") -> RawDocument:
    """A valid raw document number ``i``."""
    return RawDocument(
        id=f"doc-{i}",
        source="wire",
        kind=kind,  # type: ignore[arg-type]
        title=title or f"{ticker} shares move after quarterly report number {i}",
        tickers=[ticker],
        published_at=T0,
        fetched_at=T0,
    )


def send(settings: KafkaSettings, items: list[tuple[str, bytes | None, bytes]]) -> None:
    """Produce ``(topic, key, value)`` records in order and wait for the acks."""
    producer = make_producer(settings)
    try:
        for topic, key, value in items:
            producer.send(topic, value=value, key=key).get(timeout=30)
    finally:
        producer.close()


def send_docs(settings: KafkaSettings, topics: TopicNames, docs: list[RawDocument]) -> None:
    """Produce raw documents to their raw topic, keyed like the crawlers do."""
    send(settings, [(topics.raw_for(d.kind), message_key(d), encode(d)) for d in docs])


def read_topic(
    settings: KafkaSettings, topic: str, count: int, timeout_s: float = 60.0
) -> list[ConsumerRecord]:
    """Read ``topic`` from the start until ``count`` records arrived (or the time is up)."""
    consumer = KafkaConsumer(
        **settings.client_kwargs(), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def wait_for(predicate: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    """Poll ``predicate`` every 50 ms until it holds; False if it never did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class Running:
    """A service running in a thread, stopped and joined by :meth:`stop`."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.flag = StopFlag()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.service.run(self.flag)
        except BaseException as exc:  # the test inspects it
            self.error = exc

    def stop(self) -> None:
        self.flag.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "scorer did not stop"


@pytest.fixture
def running() -> Iterator[Callable[[Any], Running]]:
    """Start services in threads; every one is stopped at the end of the test."""
    started: list[Running] = []

    def start(service: Any) -> Running:
        run = Running(service)
        started.append(run)
        return run

    yield start
    for run in started:
        run.flag.set()
        run.thread.join(timeout=60)


class Kit:
    """The helpers above, handed to tests as one fixture (conftest is not importable)."""

    T0 = T0
    scorer_settings = staticmethod(scorer_settings)
    raw_doc = staticmethod(raw_doc)
    send = staticmethod(send)
    send_docs = staticmethod(send_docs)
    read_topic = staticmethod(read_topic)
    wait_for = staticmethod(wait_for)


@pytest.fixture
def kit() -> type[Kit]:
    """Helpers for producing raw documents and reading topics."""
    return Kit
