"""Prometheus metrics of the stream scorer, all on an injectable registry.

Dead letters are counted in the shared ``finsentinel_deadletters_total``
(:mod:`stream.deadletters`) with ``stage="score"``. Label sets are fixed and
created at start-up: reasons from
:data:`~stream.contracts.schemas.REJECT_REASONS`, sentiments from
:data:`~stream.contracts.schemas.SENTIMENT_LABELS`, topics from the model card.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = ScorerMetrics(registry)
>>> registry.get_sample_value(
...     "finsentinel_deadletters_total", {"stage": "score", "reason": "empty_text"})
0.0
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from stream.contracts.schemas import SENTIMENT_LABELS, UNSUPPORTED_REASONS
from stream.deadletters import DeadLetterCounter

__all__ = [
    "FALLBACK_REASONS",
    "MODEL_HEADS",
    "SWITCH_OUTCOMES",
    "ScorerMetrics",
    "ShadowMetrics",
    "SwitchMetrics",
    "fallback_reason_class",
    "is_fallback",
]

#: Bounded classes of "why CUDA was not used" (the label of the fallback gauge).
#: ``no_gpu_device``: the machine has no NVIDIA device at all (only with ``provider=cuda``
#: is that a fallback; ``auto`` on such a machine is CPU by design, see :func:`is_fallback`).
FALLBACK_REASONS: Final = (
    "not_in_build",
    "session_error",
    "no_usable_gpu",
    "no_gpu_device",
    "other",
)

#: The model's heads (the ``head`` label of the shadow disagreement counter).
MODEL_HEADS: Final = ("sentiment", "topic")
#: Outcomes of a model switch: ``switched`` to the new model, or ``failed`` (old one kept).
SWITCH_OUTCOMES: Final = ("switched", "failed")

_BATCH_SIZE_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
# Batched inference: a few ms for a tiny batch on a GPU, seconds for a big CPU batch.
_INFERENCE_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
# From the crawler's fetch to the scored record: includes time queued in Kafka.
_LATENCY_BUCKETS: Final = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)


def fallback_reason_class(reason: str) -> str:
    """Map a provider fallback message to one of :data:`FALLBACK_REASONS`.

    >>> fallback_reason_class("CUDAExecutionProvider is not in this onnxruntime build (x)")
    'not_in_build'
    >>> fallback_reason_class("no NVIDIA GPU device on this machine (/dev/nvidia* absent)")
    'no_gpu_device'
    """
    text = reason.lower()
    if "not in this onnxruntime build" in text:
        return "not_in_build"
    if "no nvidia gpu device" in text:
        return "no_gpu_device"
    if "creating a cuda session failed" in text:
        return "session_error"
    if "could not initialise cuda" in text or "no gpu" in text:
        return "no_usable_gpu"
    return "other"


def is_fallback(requested: str, reason: str | None, *, gpu_present: bool) -> bool:
    """Whether scoring on CPU is a *fallback* (worth the gauge and the alert).

    ``cpu`` never falls back; ``cuda`` does whenever CUDA was not used; ``auto``
    does only on a machine that has a GPU (without one, CPU is what auto means).

    >>> is_fallback("auto", "CUDAExecutionProvider is not in this build", gpu_present=False)
    False
    >>> is_fallback("auto", "creating a CUDA session failed: x", gpu_present=True)
    True
    >>> is_fallback("cuda", "no NVIDIA GPU device on this machine", gpu_present=False)
    True
    """
    if reason is None or requested == "cpu":
        return False
    return requested == "cuda" or gpu_present


class ScorerMetrics:
    """Every metric the scorer exports (``finsentinel_scorer_*``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        ns, sub = "finsentinel", "scorer"
        self.consumed = Counter(
            "documents_consumed",
            "Records read from the raw topics.",
            namespace=ns,
            subsystem=sub,
            registry=registry,
        )
        self.scored = Counter(
            "documents_scored",
            "Documents scored and acknowledged that the model can read, by topic and "
            "sentiment (the others count in documents_unsupported_total).",
            ["topic", "sentiment"],
            namespace=ns,
            subsystem=sub,
            registry=registry,
        )
        self.unsupported = Counter(
            "documents_unsupported",
            "Documents scored and acknowledged that the model cannot read (another "
            "language, no text), by reason: their sentiment is not counted.",
            ["reason"],
            namespace=ns,
            subsystem=sub,
            registry=registry,
        )
        for reason in UNSUPPORTED_REASONS:
            self.unsupported.labels(reason=reason)
        #: ``finsentinel_deadletters_total{stage="score"}``, shared by every stage.
        self.dead_letters = DeadLetterCounter(registry, stage="score")
        self.batches = Counter(
            "batches",
            "Micro-batches by outcome (committed, retried, commit_failed).",
            ["outcome"],
            namespace=ns,
            subsystem=sub,
            registry=registry,
        )
        for outcome in ("committed", "retried", "commit_failed"):
            self.batches.labels(outcome=outcome)
        self.batch_size = Histogram(
            "batch_size_documents",
            "Records per micro-batch.",
            namespace=ns,
            subsystem=sub,
            registry=registry,
            buckets=_BATCH_SIZE_BUCKETS,
        )
        self.inference = Histogram(
            "batch_inference_seconds",
            "Tokenization and ONNX Runtime time per micro-batch.",
            namespace=ns,
            subsystem=sub,
            registry=registry,
            buckets=_INFERENCE_BUCKETS,
        )
        self.latency = Histogram(
            "end_to_end_latency_seconds",
            "From a document's fetched_at to its scored_at.",
            namespace=ns,
            subsystem=sub,
            registry=registry,
            buckets=_LATENCY_BUCKETS,
        )
        self.lag = Gauge(
            "consumer_lag_records",
            "Records behind the partition's high watermark "
            "(approximate on brokers that under-report it).",
            ["topic", "partition"],
            namespace=ns,
            subsystem=sub,
            registry=registry,
        )
        self.rebalances = Counter(
            "rebalances",
            "Partition assignment changes, by event.",
            ["event"],
            namespace=ns,
            subsystem=sub,
            registry=registry,
        )
        for event in ("assigned", "revoked", "lost"):
            self.rebalances.labels(event=event)
        self.model = Info(
            "model",
            "The loaded model, provider and batch settings.",
            namespace=ns,
            subsystem=sub,
            registry=registry,
        )
        self.fallback = Gauge(
            "provider_fallback",
            "1 when CUDA was asked for (or auto) and not used, by reason.",
            ["reason"],
            namespace=ns,
            subsystem=sub,
            registry=registry,
        )
        for reason in FALLBACK_REASONS:
            self.fallback.labels(reason=reason)

    def declare_topics(self, topics: Iterable[str]) -> None:
        """Create the ``scored`` series for the model card's topic labels."""
        for topic in topics:
            for sentiment in SENTIMENT_LABELS:
                self.scored.labels(topic=topic, sentiment=sentiment)


# --- Model lifecycle: shadow scoring and the model switch (stream/scorer/shadow.py, swap.py).


class ShadowMetrics:
    """``finsentinel_scorer_shadow_*``: a candidate model scored next to the live one.

    The disagreement rate of a head is ``rate(..._disagreements_total{head}) /
    rate(..._documents_total)``.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        ns, sub = "finsentinel", "scorer"
        self.documents = Counter(
            "shadow_documents",
            "Documents scored by both the live and the shadow model.",
            namespace=ns,
            subsystem=sub,
            registry=registry,
        )
        self.disagreements = Counter(
            "shadow_disagreements",
            "Documents on which the shadow model's label differs from the live one, by head.",
            ["head"],
            namespace=ns,
            subsystem=sub,
            registry=registry,
        )
        for head in MODEL_HEADS:
            self.disagreements.labels(head=head)
        self.failures = Counter(
            "shadow_failures",
            "Shadow batches not scored or not produced, by stage (live output unaffected).",
            ["stage"],
            namespace=ns,
            subsystem=sub,
            registry=registry,
        )
        for stage in ("score", "produce"):
            self.failures.labels(stage=stage)
        self.model = Info(
            "shadow_model",
            "The candidate model scored in shadow.",
            namespace=ns,
            subsystem=sub,
            registry=registry,
        )


class SwitchMetrics:
    """``finsentinel_scorer_model_switches_total{outcome}``: SIGHUP and registry switches."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.switches = Counter(
            "model_switches",
            "Model switches between batches, by outcome (failed: the old model keeps scoring).",
            ["outcome"],
            namespace="finsentinel",
            subsystem="scorer",
            registry=registry,
        )
        for outcome in SWITCH_OUTCOMES:
            self.switches.labels(outcome=outcome)
