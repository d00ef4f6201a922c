"""A scorer process, a steady stream of documents and the scored topic read back.

Used by ``test_continual_learning_e2e.py``: :class:`ScorerProcess` runs
``python -m stream`` (configured by environment variables, as deployed) with its
/metrics on a known port; :class:`DocumentStream` produces documents from a
thread while the test does other things; :func:`read_scored` reads the scored
topic back in partition and offset order.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from stream.contracts.schemas import RawDocument, ScoredDocument, decode, encode, message_key
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_producer
from tests.deploy.live import Process, free_port, http_get, wait_for

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def send_texts(kafka: KafkaSettings, topic: str, docs: list[tuple[str, str]]) -> None:
    """Produce ``(doc_id, text)`` news documents in order, each acknowledged."""
    producer = make_producer(kafka)
    try:
        for doc_id, text in docs:
            produce(producer, topic, doc_id, text)
    finally:
        producer.close()


def produce(producer: KafkaProducer, topic: str, doc_id: str, text: str) -> None:
    """One raw news document whose body is ``text``, keyed as the crawlers do."""
    doc = RawDocument(
        id=doc_id, source="wire", kind="news", body=text, published_at=T0, fetched_at=T0
    )
    producer.send(topic, value=encode(doc), key=message_key(doc)).get(timeout=30)


@dataclass
class DocumentStream:
    """Documents ``live-0``, ``live-1`` ... produced by a thread, one every 20 ms, until
    :meth:`finish`; ``sent`` lists the acknowledged ones in order."""

    kafka: KafkaSettings
    topic: str
    texts: list[str]
    sent: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    error: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            producer = make_producer(self.kafka)
            try:
                i = 0
                while not self.stop.is_set():
                    produce(producer, self.topic, f"live-{i}", self.texts[i % len(self.texts)])
                    self.sent.append(f"live-{i}")
                    i += 1
                    self.stop.wait(0.02)
            finally:
                producer.close()
        except BaseException as exc:  # reported by the test
            self.error.append(exc)

    def finish(self) -> list[str]:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive() and not self.error, self.error
        return self.sent


class ScorerProcess:
    """``python -m stream`` following a registry, /metrics on a known port."""

    def __init__(
        self,
        workdir: Path,
        broker: str,
        topics: TopicNames,
        registry: Path,
        *,
        drift_window_documents: int,
    ) -> None:
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSENTINEL_", "KAFKA_"))}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=broker,
            FINSENTINEL_TOPIC_PREFIX=topics.raw_news.split(".")[0],
            FINSENTINEL_SCORER_REGISTRY_DIR=str(registry),
            FINSENTINEL_SCORER_REGISTRY_POLL_S="0.2",
            FINSENTINEL_SCORER_DRIFT_WINDOW_DOCUMENTS=str(drift_window_documents),
            FINSENTINEL_SCORER_METRICS_PORT=str(self.port),
            FINSENTINEL_SCORER_GROUP_ID=f"scorer-{topics.raw_news.split('.')[0]}",
            FINSENTINEL_SCORER_PROVIDER="cpu",
            FINSENTINEL_SCORER_INTRA_OP_THREADS="1",
            FINSENTINEL_SCORER_BATCH_MAX_WAIT_MS="50",
            FINSENTINEL_SCORER_IDLE_POLL_MS="100",
            FINSENTINEL_LOG_LEVEL="INFO",
        )
        self.process = Process(
            [sys.executable, "-m", "stream"], workdir / "scorer.log", cwd=ROOT, env=env
        )
        wait_for("the scorer to serve /metrics", self._serving, timeout_s=120)

    def _serving(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"the scorer exited:\n{self.process.tail()}")
        return bool(self.samples())

    def samples(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Every ``finsentinel_scorer_*`` sample on /metrics, by sample name."""
        text = http_get(f"http://{self.target}/metrics").decode()
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name.startswith("finsentinel_scorer_"):
                    out.setdefault(s.name, []).append((s.labels, s.value))
        return out

    def scored(self) -> int:
        """Documents scored, whether the model could read them or not."""
        samples = self.samples()
        names = ("documents_scored_total", "documents_unsupported_total")
        return int(sum(v for n in names for _, v in samples[f"finsentinel_scorer_{n}"]))

    def model_versions(self) -> set[str]:
        return {lab["model_version"] for lab, _ in self.samples()["finsentinel_scorer_model_info"]}

    def stop(self) -> None:
        self.process.stop(timeout_s=60)
        code = self.process.proc.returncode
        assert code == 0, f"the scorer exited {code}:\n{self.process.tail()}"


def read_scored(kafka: KafkaSettings, topic: str, count: int) -> list[tuple[int, ScoredDocument]]:
    """Every scored record in partition and offset order: ``count`` of them, and then
    whatever else arrives before the topic stays quiet for a 2-second poll."""
    consumer = KafkaConsumer(
        **kafka.client_kwargs(), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + 120
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        while batches := consumer.poll(timeout_ms=2000):
            records.extend(r for batch in batches.values() for r in batch)
    finally:
        consumer.close()
    records.sort(key=lambda r: (r.partition, r.offset))
    return [(r.partition, decode(r.value, ScoredDocument)) for r in records]
