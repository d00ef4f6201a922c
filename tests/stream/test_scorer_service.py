"""The scorer service against the real embedded broker and the real tiny ONNX model."""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from models.exceptions import ProviderError
from stream.contracts.schemas import DeadLetter, ScoredDocument, decode, encode
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings
from stream.scorer.delivery import DeliveryError
from stream.scorer.metrics import FALLBACK_REASONS
from stream.scorer.service import ScorerService
from tests.stream.settings_kit import scorer_settings

pytestmark = pytest.mark.integration


def _committed(settings: KafkaSettings, group_id: str, topics: TopicNames) -> int:
    """Sum of the group's committed offsets over the raw topics' partitions."""
    consumer = KafkaConsumer(**settings.client_kwargs(), group_id=group_id)
    try:
        total = 0
        for topic in topics.raw:
            for p in consumer.partitions_for_topic(topic) or ():
                total += consumer.committed(TopicPartition(topic, p)) or 0
        return total
    finally:
        consumer.close()


BAD = {
    "malformed_json": b'{"id": "x",',
    "undecodable": b"\xff\xfe not utf-8",
    "schema_violation": json.dumps({"id": "x", "kind": "tweet"}).encode(),
    "unsupported_version": json.dumps({"schema_version": 7}).encode(),
    "too_large": b" " * 1_000_001,
}


def test_scores_in_order_per_key_dead_letters_bad_input_and_counts_it(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    registry: CollectorRegistry,
    tiny_classifier: Any,
    kit: Any,
    running: Any,
) -> None:
    tickers = ["ACME", "GLOB", "INIT"]
    docs = [
        kit.raw_doc(i, ticker=tickers[i % 3], kind="news" if i % 4 else "comment")
        for i in range(30)
    ]
    german = "übertrifft die Erwartungen und hebt die Prognose für das Gesamtjahr deutlich an"
    for i in (5, 9):  # scored and kept, but their sentiment is not the model's to give
        docs[i] = docs[i].model_copy(update={"title": f"{tickers[i % 3]} {german}"})
    empty = kit.raw_doc(99).model_copy(update={"title": " "})
    bad = [*BAD.values(), encode(empty)]
    kit.send_docs(kafka_settings, topics, docs)
    kit.send(kafka_settings, [(topics.raw_comments, b"bad", v) for v in bad])

    service = ScorerService(
        scorer_settings(group_id, batch_max_size=8),
        kafka=kafka_settings,
        topics=topics,
        registry=registry,
        classifier=tiny_classifier,
        clock=lambda: kit.T0,
    )
    run = running(service)
    assert kit.wait_for(lambda: service.stats.scored + service.stats.dead_lettered == 36)

    def lags() -> list[float]:
        samples = (
            registry.get_sample_value(
                "finsentinel_scorer_consumer_lag_records", {"topic": t, "partition": str(p)}
            )
            for t in topics.raw
            for p in range(3)
        )
        return [v for v in samples if v is not None]

    # Lag is exported per owned partition once its high watermark is known.
    assert kit.wait_for(lambda: len(lags()) > 0)
    assert all(v >= 0 for v in lags())
    run.stop()
    assert run.error is None

    scored = kit.read_topic(kafka_settings, topics.scored, 30)
    # Order holds per key within one raw topic (news and comments are separate streams).
    per_key: dict[tuple[bytes, str], list[int]] = defaultdict(list)
    unreadable = set()
    for record in sorted(scored, key=lambda r: (r.partition, r.offset)):
        doc = decode(record.value, ScoredDocument)
        per_key[record.key, doc.kind].append(int(doc.id.split("-")[1]))
        if doc.unsupported_reason is not None:
            unreadable.add((doc.id, doc.unsupported_reason))
    assert unreadable == {("doc-5", "language"), ("doc-9", "language")}
    assert sorted(i for ids in per_key.values() for i in ids) == list(range(30))
    for (key, kind), ids in per_key.items():
        assert ids == sorted(ids), f"{key!r} {kind} out of order"
        assert {tickers[i % 3].encode() for i in ids} == {key}

    letters = [
        decode(r.value, DeadLetter) for r in kit.read_topic(kafka_settings, topics.deadletter, 6)
    ]
    originals = {**BAD, "empty_text": encode(empty)}
    originals["too_large"] = BAD["too_large"][:700_000]  # cut to fit; the detail says where
    assert sorted((dl.reason, dl.original) for dl in letters) == sorted(originals.items())
    assert all(dl.source_topic == topics.raw_comments and dl.key_b64 for dl in letters)

    value = registry.get_sample_value
    assert value("finsentinel_scorer_documents_consumed_total") == 36
    for reason in (*BAD, "empty_text"):
        assert value("finsentinel_deadletters_total", {"stage": "score", "reason": reason}) == 1
    other = {"stage": "score", "reason": "processing_error"}
    assert value("finsentinel_deadletters_total", other) == 0
    by_label = [
        value("finsentinel_scorer_documents_scored_total", {"topic": t, "sentiment": s}) or 0
        for t in tiny_classifier.card.topic_labels
        for s in ("negative", "neutral", "positive")
    ]
    assert sum(by_label) == 28  # the two German documents are not in the sentiment counts
    assert value("finsentinel_scorer_documents_unsupported_total", {"reason": "language"}) == 2
    assert value("finsentinel_scorer_documents_unsupported_total", {"reason": "no_text"}) == 0
    batches = value("finsentinel_scorer_batch_size_documents_count")
    assert batches == value("finsentinel_scorer_batches_total", {"outcome": "committed"})
    assert value("finsentinel_scorer_batch_size_documents_sum") == 36
    assert value("finsentinel_scorer_end_to_end_latency_seconds_count") == 30
    info = {
        "model_name": tiny_classifier.card.name,
        "model_version": tiny_classifier.card.version,
        "provider": "CPUExecutionProvider",
        "variant": "int8",
        "device_id": "0",
        "io_binding": "false",
        "batch_max_size": "8",
        "batch_max_wait_ms": "50",
        "inference_batch_size": "64",
        "max_batch_tokens": "1024",
    }
    assert value("finsentinel_scorer_model_info", info) == 1
    assert _committed(kafka_settings, group_id, topics) == 36


class CrashAfterProduce(ScorerService):
    """Dies like a killed process: after the batch was produced, before its commit."""

    def _commit(self, consumer: Any, offsets: Any) -> None:
        raise SystemExit("simulated kill between produce and commit")


@pytest.mark.slow
def test_a_crash_between_produce_and_commit_means_rescoring_not_loss(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    tiny_classifier: Any,
    kit: Any,
    running: Any,
) -> None:
    kit.send_docs(kafka_settings, topics, [kit.raw_doc(i) for i in range(20)])
    settings = scorer_settings(group_id, batch_max_size=64, batch_max_wait_ms=1_000)
    crashing = CrashAfterProduce(
        settings, kafka=kafka_settings, topics=topics, classifier=tiny_classifier
    )
    first = running(crashing)
    first.thread.join(timeout=60)
    assert isinstance(first.error, SystemExit)
    produced = crashing.stats.scored
    assert produced > 0
    assert _committed(kafka_settings, group_id, topics) == 0

    second = ScorerService(
        settings, kafka=kafka_settings, topics=topics, classifier=tiny_classifier
    )
    run = running(second)
    assert kit.wait_for(lambda: second.stats.scored == 20)
    run.stop()
    ids = [
        decode(r.value, ScoredDocument).id
        for r in kit.read_topic(kafka_settings, topics.scored, 20 + produced)
    ]
    assert len(ids) == 20 + produced  # the crashed batch was scored twice: duplicates, no loss
    assert {f"doc-{i}" for i in range(20)} == set(ids)
    assert _committed(kafka_settings, group_id, topics) == 20


class FlakyBroker(ScorerService):
    """The broker fails to acknowledge the first batch (a fake failure: Tansu cannot be told to)."""

    failures = 0

    def _deliver(self, producer: Any, outcomes: Any) -> Any:
        if self.failures == 0:
            self.failures += 1
            raise DeliveryError("simulated: 3 of 3 records were not acknowledged")
        return super()._deliver(producer, outcomes)


def test_an_unacknowledged_batch_is_reread_and_not_committed_until_delivered(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    registry: CollectorRegistry,
    tiny_classifier: Any,
    kit: Any,
    running: Any,
) -> None:
    kit.send_docs(kafka_settings, topics, [kit.raw_doc(i) for i in range(12)])
    service = FlakyBroker(
        scorer_settings(group_id, retry_backoff_ms=0, batch_max_wait_ms=500),
        kafka=kafka_settings,
        topics=topics,
        registry=registry,
        classifier=tiny_classifier,
    )
    run = running(service)
    assert kit.wait_for(lambda: service.stats.scored == 12)
    run.stop()
    assert service.stats.retries == 1
    assert (
        registry.get_sample_value("finsentinel_scorer_batches_total", {"outcome": "retried"}) == 1
    )
    assert _committed(kafka_settings, group_id, topics) == 12
    ids = [
        decode(r.value, ScoredDocument).id
        for r in kit.read_topic(kafka_settings, topics.scored, 12)
    ]
    assert sorted(ids) == sorted(f"doc-{i}" for i in range(12))  # the failed try produced nothing


@pytest.mark.slow
def test_two_scorers_in_one_group_share_partitions_and_lose_nothing(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    tiny_classifier: Any,
    kit: Any,
    running: Any,
) -> None:
    # 20 keys: every partition of both raw topics gets some (so each scorer has work).
    docs = [
        kit.raw_doc(i, ticker=f"T{i % 20}", kind=("news", "comment")[i % 2]) for i in range(180)
    ]
    kit.send_docs(kafka_settings, topics, docs[:60])
    settings = scorer_settings(group_id, batch_max_size=5)
    one = ScorerService(settings, kafka=kafka_settings, topics=topics, classifier=tiny_classifier)
    two = ScorerService(settings, kafka=kafka_settings, topics=topics, classifier=tiny_classifier)
    run_one = running(one)
    assert kit.wait_for(lambda: one.stats.scored >= 5)
    run_two = running(two)  # joins while the first is busy: a rebalance mid-stream
    kit.send_docs(kafka_settings, topics, docs[60:120])
    assert kit.wait_for(lambda: two.ready and one.ready)
    kit.send_docs(kafka_settings, topics, docs[120:])
    assert kit.wait_for(lambda: _committed(kafka_settings, group_id, topics) == 180)
    run_one.stop()
    run_two.stop()
    assert run_one.error is None and run_two.error is None
    assert one.stats.scored > 0 and two.stats.scored > 0
    total = one.stats.scored + two.stats.scored
    records = kit.read_topic(kafka_settings, topics.scored, total)
    assert len(records) == total
    assert {decode(r.value, ScoredDocument).id for r in records} == {d.id for d in docs}


class GatedLoad(ScorerService):
    """Holds the model load until the test opens the gate, to observe /healthz before."""

    gate = threading.Event()

    def load_model(self) -> Any:
        self.gate.wait(timeout=60)
        return super().load_model()


def test_healthz_is_not_ready_until_model_loaded_and_partitions_assigned(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    tiny_model_dir: Path,
    kit: Any,
    running: Any,
) -> None:
    service = GatedLoad(
        scorer_settings(group_id, model_dir=tiny_model_dir, provider="cpu"),
        kafka=kafka_settings,
        topics=topics,
    )
    run = running(service)
    assert kit.wait_for(lambda: service.metrics_server is not None)
    assert service.metrics_server is not None
    url = f"{service.metrics_server.url}/healthz"
    first = httpx.get(url)
    assert (first.status_code, "loading the model" in first.text) == (503, True)
    GatedLoad.gate.set()
    assert kit.wait_for(lambda: httpx.get(url).status_code == 200)
    assert "scoring 6 partitions" in httpx.get(url).text
    metrics = httpx.get(f"{service.metrics_server.url}/metrics").text
    assert "finsentinel_scorer_model_info" in metrics
    run.stop()
    assert run.error is None


def test_cuda_request_falls_back_to_cpu_loudly(
    tiny_model_dir: Path, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    service = ScorerService(
        scorer_settings("unused", model_dir=tiny_model_dir, provider="cuda"),
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
        registry=registry,
    )
    with caplog.at_level(logging.WARNING):
        classifier = service.load_model()
    if classifier.provider == "CUDAExecutionProvider":
        pytest.skip("a usable GPU is present: there is no fallback to observe")
    assert classifier.provider == "CPUExecutionProvider"
    assert any(
        "asked for cuda but runs on CPU" in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    )
    fallen = [
        reason
        for reason in FALLBACK_REASONS
        if registry.get_sample_value("finsentinel_scorer_provider_fallback", {"reason": reason})
    ]
    assert len(fallen) == 1
    assert fallen != ["other"]  # every message the provider code writes has its own class


def test_auto_on_a_machine_without_gpu_is_not_a_fallback(
    tiny_model_dir: Path, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 18, finding 10: auto on a GPU-less machine set reason="other" to 1."""
    from models.providers import gpu_device_present

    if gpu_device_present():
        pytest.skip("this machine has an NVIDIA device: auto is expected to use it")
    service = ScorerService(
        scorer_settings("unused", model_dir=tiny_model_dir, provider="auto"),
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
        registry=registry,
    )
    with caplog.at_level(logging.INFO):
        classifier = service.load_model()
    assert classifier.provider == "CPUExecutionProvider"
    values = {
        reason: registry.get_sample_value(
            "finsentinel_scorer_provider_fallback", {"reason": reason}
        )
        for reason in FALLBACK_REASONS
    }
    assert values == dict.fromkeys(FALLBACK_REASONS, 0.0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("no GPU on this machine" in r.getMessage() for r in caplog.records)


def test_require_gpu_refuses_to_start_without_one(tiny_model_dir: Path) -> None:
    service = ScorerService(
        scorer_settings("unused", model_dir=tiny_model_dir, provider="cuda", require_gpu=True),
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
    )
    try:
        classifier = service.load_model()
    except ProviderError as exc:
        assert "GPU required" in str(exc)
    else:
        assert classifier.provider == "CUDAExecutionProvider"
