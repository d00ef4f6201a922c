"""Drift monitoring in the scorer: the embedded broker, the tiny ONNX model, its /metrics."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from models.drift import load_reference
from models.training.tiny import PARITY_TEXTS, shifted_texts
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings
from stream.scorer.service import ScorerService
from stream.scorer.settings import ScorerSettings


def _scrape(service: ScorerService) -> dict[tuple[str, str], float]:
    """``(name, head)`` -> value of every drift family on the scorer's /metrics."""
    assert service.metrics_server is not None
    text = httpx.get(f"{service.metrics_server.url}/metrics").text
    return {
        (sample.name, sample.labels.get("head", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if "drift" in sample.name
        or sample.name.split("finsentinel_scorer_")[-1]
        in {
            "confidence_mean",
            "low_confidence_ratio",
            "unknown_token_ratio",
            "text_length_psi",
        }
    }


@pytest.mark.integration
def test_a_shifted_stream_raises_the_drift_metrics(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    registry: CollectorRegistry,
    tiny_classifier: Any,
    kit: Any,
    running: Any,
) -> None:
    reference = load_reference(tiny_classifier.model_dir)
    assert reference is not None and reference.n_documents == len(PARITY_TEXTS)
    window = len(PARITY_TEXTS)
    service = ScorerService(
        kit.scorer_settings(group_id, drift_window_documents=window),
        kafka=kafka_settings,
        topics=topics,
        registry=registry,
        classifier=tiny_classifier,
        clock=lambda: kit.T0,
    )
    run = running(service)

    # Phase 1: the reference's own texts. The window matches the reference.
    calm = [kit.raw_doc(i, title=t) for i, t in enumerate(PARITY_TEXTS)]
    kit.send_docs(kafka_settings, topics, calm)
    assert kit.wait_for(lambda: service.stats.scored == window)
    before = _scrape(service)
    assert before["finsentinel_scorer_drift_window_documents", ""] == window
    for head in ("sentiment", "topic"):
        # int8 activations are quantized per batch: a near-tie may flip in other batches.
        assert before["finsentinel_scorer_drift_psi", head] < 0.05
        assert before["finsentinel_scorer_drift_js_distance", head] < 0.1
        assert before["finsentinel_scorer_confidence_mean", head] == pytest.approx(
            reference.heads[head].confidence_mean, abs=0.02
        )
        assert before["finsentinel_scorer_drift_reference_confidence_mean", head] == pytest.approx(
            reference.heads[head].confidence_mean
        )
    assert before["finsentinel_scorer_text_length_psi", ""] == pytest.approx(0.0)
    assert before["finsentinel_scorer_unknown_token_ratio", ""] == reference.unknown_token_ratio

    # Phase 2: new vocabulary, unknown tokens, longer texts, and sentiments other than
    # the one the model gave most reference texts: the window now holds only these.
    shifted = [
        kit.raw_doc(1000 + i, kind="comment").model_copy(update={"title": "", "body": t})
        for i, t in enumerate(shifted_texts(tiny_classifier, window))
    ]
    kit.send_docs(kafka_settings, topics, shifted)
    assert kit.wait_for(lambda: service.stats.scored == 2 * window)
    after = _scrape(service)
    run.stop()
    assert run.error is None

    assert after["finsentinel_scorer_drift_window_documents", ""] == window
    # The majority label is (nearly) gone from the window.
    assert after["finsentinel_scorer_drift_psi", "sentiment"] > 0.25
    assert (
        after["finsentinel_scorer_drift_js_distance", "sentiment"]
        > before["finsentinel_scorer_drift_js_distance", "sentiment"]
    )
    assert after["finsentinel_scorer_unknown_token_ratio", ""] > 0.02
    assert after["finsentinel_scorer_unknown_token_ratio", ""] > reference.unknown_token_ratio
    assert after["finsentinel_scorer_text_length_psi", ""] > 0.25


def test_a_model_without_reference_exports_no_drift_metrics(
    tiny_model_dir_without_reference: Path,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from models.scoring import Classifier

    classifier = Classifier.load(
        tiny_model_dir_without_reference, provider="cpu", intra_op_threads=1
    )
    service = ScorerService(
        ScorerSettings(metrics_port=0),
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"),
        registry=registry,
        classifier=classifier,
    )
    with caplog.at_level(logging.INFO, logger="stream.scorer.drift"):
        service.load_model()
    service.drift.observe(classifier.predict(["Acme beats estimates"]))
    names = {m.name for m in registry.collect()}
    assert not {n for n in names if "drift" in n or "unknown_token" in n or "confidence" in n}
    lines = [r for r in caplog.records if r.name == "stream.scorer.drift"]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert "no reference profile" in lines[0].getMessage()


def test_the_window_restarts_when_a_model_is_attached(
    tiny_classifier: Any, registry: CollectorRegistry
) -> None:
    from stream.scorer.drift import ScorerDrift

    drift = ScorerDrift(registry, window_documents=10, confidence_floor=0.9)
    assert drift.attach(tiny_classifier.model_dir)
    drift.observe(tiny_classifier.predict(list(PARITY_TEXTS[:4])))
    value = registry.get_sample_value
    assert value("finsentinel_scorer_drift_window_documents") == 4
    # Another floor than the reference's: its low-confidence share is not comparable.
    assert (
        value("finsentinel_scorer_drift_reference_low_confidence_ratio", {"head": "topic"}) is None
    )
    assert value("finsentinel_scorer_low_confidence_ratio", {"head": "topic"}) is not None
    assert drift.attach(tiny_classifier.model_dir)
    assert value("finsentinel_scorer_drift_window_documents") == 0
    assert value("finsentinel_scorer_drift_psi", {"head": "topic"}) is None
