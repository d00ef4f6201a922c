"""What a scorer says when it (re)loads a model: metrics, drift reference and one log line.

``finsentinel_scorer_model_info`` (model, version, provider, variant, batching),
the CPU-fallback gauge with its reason class, the drift window's reference, and
an INFO line (a WARNING when ``cuda`` was asked for and the scorer runs on CPU).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from stream.scorer.drift import ScorerDrift
from stream.scorer.metrics import ScorerMetrics, fallback_reason_class, is_fallback
from stream.scorer.settings import ScorerSettings

if TYPE_CHECKING:
    from models.scoring import Classifier

__all__ = ["announce"]

logger = logging.getLogger(__name__)


def announce(
    classifier: Classifier, settings: ScorerSettings, metrics: ScorerMetrics, drift: ScorerDrift
) -> None:
    """Export and log the model ``classifier`` that now scores."""
    from models.providers import gpu_device_present

    s, card = settings, classifier.card
    metrics.declare_topics(card.topic_labels)
    drift.attach(classifier.model_dir)
    metrics.model.info(
        {
            "model_name": card.name,
            "model_version": card.version,
            "provider": classifier.provider,
            "variant": classifier.variant,
            "device_id": str(s.device_id),
            "io_binding": str(classifier.io_binding).lower(),
            "batch_max_size": str(s.batch_max_size),
            "batch_max_wait_ms": str(s.batch_max_wait_ms),
            "inference_batch_size": str(s.inference_batch_size),
            "max_batch_tokens": str(classifier.max_batch_tokens),
        }
    )
    reason = classifier.fallback_reason
    if is_fallback(s.provider, reason, gpu_present=gpu_device_present()):
        assert reason is not None
        metrics.fallback.labels(reason=fallback_reason_class(reason)).set(1)
        log = logger.warning if s.provider == "cuda" else logger.info
        log("scorer asked for %s but runs on CPU: %s", s.provider, reason)
    elif reason is not None and s.provider == "auto":
        logger.info("no GPU on this machine: provider auto scores on CPU (%s)", reason)
    logger.info(
        "scorer model %s %s on %s (%s variant, I/O binding %s); "
        "batches of up to %s records or %s ms, %s windows per inference call",
        card.name, card.version, classifier.provider, classifier.variant,
        "on" if classifier.io_binding else "off",
        s.batch_max_size, s.batch_max_wait_ms, s.inference_batch_size,
    )  # fmt: skip
