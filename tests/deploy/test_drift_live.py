"""The model-drift rules on a real Prometheus scraping a real scorer.

The scorer (tiny ONNX model, a drift window of 200 documents, the embedded
broker) first scores its reference texts, then a stream that drifts away from
them (:func:`models.training.tiny.shifted_texts`). Prometheus loads the shipped
rules with the drift group's ``for:`` cut to 0s (thresholds and expressions as
shipped): quiet on the first stream, FinSentinelPredictionDrift and
FinSentinelInputDrift firing on the second.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stream.contracts.schemas import RawDocument, encode, message_key
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_producer
from stream.runtime import StopFlag
from tests.deploy.live import monitoring, rules_without_wait, wait_for
from tests.deploy.manifests import RULE_FILES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW = 200
GROUP = "finsentinel-model-drift"
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
_DRIFT_ALERTS = {
    "FinSentinelPredictionDrift",
    "FinSentinelLowConfidenceRising",
    "FinSentinelInputDrift",
}


def _send(kafka: KafkaSettings, topics: TopicNames, texts: list[str], first_id: int) -> None:
    producer = make_producer(kafka)
    try:
        for i, text in enumerate(texts, start=first_id):
            doc = RawDocument(
                id=f"doc-{i}", source="wire", kind="news", body=text, published_at=T0, fetched_at=T0
            )
            producer.send(topics.raw_news, value=encode(doc), key=message_key(doc)).get(timeout=30)
    finally:
        producer.close()


@pytest.fixture
def scorer(
    kafka_settings: KafkaSettings, topics: TopicNames, group_id: str, tiny_model_dir: Path
) -> Iterator[Any]:
    from models.scoring import Classifier
    from stream.scorer.service import ScorerService
    from stream.scorer.settings import ScorerSettings

    service = ScorerService(
        ScorerSettings(
            group_id=group_id,
            metrics_port=0,
            batch_max_wait_ms=50,
            idle_poll_ms=100,
            drift_window_documents=WINDOW,
        ),
        kafka=kafka_settings,
        topics=topics,
        classifier=Classifier.load(tiny_model_dir, provider="cpu", intra_op_threads=1),
    )
    stop, errors = StopFlag(), []

    def run() -> None:
        try:
            service.run(stop)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(
        "the scorer to serve /metrics", lambda: service.metrics_server is not None, timeout_s=60
    )
    yield service
    stop.set()
    thread.join(timeout=60)
    assert not errors, errors


def test_drift_rules_fire_on_a_drifting_stream(
    scorer: Any, kafka_settings: KafkaSettings, topics: TopicNames, tmp_path: Path
) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (make system-deps installs Debian's package)")
    from models.training.tiny import PARITY_TEXTS, shifted_texts

    alerts_yml = next(p for p in RULE_FILES if p.name == "alerts.yml")
    rules = [p for p in RULE_FILES if p != alerts_yml]
    rules.append(rules_without_wait(alerts_yml, tmp_path / "alerts.yml", GROUP))
    target = scorer.metrics_server.url.removeprefix("http://")
    with monitoring(tmp_path, target, rule_files=rules) as prometheus:
        # The reference texts themselves: a full window, no drift alert.
        _send(
            kafka_settings, topics, [PARITY_TEXTS[i % len(PARITY_TEXTS)] for i in range(WINDOW)], 0
        )
        wait_for(
            "a full drift window in Prometheus",
            lambda: bool(
                prometheus.query(f"finsentinel_scorer_drift_window_documents == {WINDOW}")
            ),
            timeout_s=120,
        )
        full = prometheus.query("timestamp(finsentinel_scorer_drift_window_documents)")
        scraped_at = float(full[0]["value"][1])
        wait_for(
            "the drift rules to be evaluated on it",
            lambda: prometheus.evaluated_after(GROUP, scraped_at + 1),
            timeout_s=60,
        )
        psi = prometheus.query('finsentinel_scorer_drift_psi{head="sentiment"}')
        assert float(psi[0]["value"][1]) < 0.25
        assert prometheus.firing(_DRIFT_ALERTS) == set()

        # A stream that drifts: new words, unknown tokens, longer texts, another label mix.
        _send(kafka_settings, topics, shifted_texts(scorer.classifier, WINDOW), WINDOW)
        wait_for(
            "FinSentinelPredictionDrift and FinSentinelInputDrift to fire",
            lambda: (
                {
                    ("FinSentinelPredictionDrift", "sentiment"),
                    ("FinSentinelInputDrift", ""),
                }
                <= prometheus.firing(_DRIFT_ALERTS)
            ),
            timeout_s=120,
        )
        wait_for("every document scored", lambda: scorer.stats.scored == 2 * WINDOW, timeout_s=60)
