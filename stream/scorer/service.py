"""The stream scorer service: raw topics in, scored and dead-letter topics out.

Delivery is at-least-once: a batch's offsets are committed only after the
broker acknowledged every record produced for it, so a crash between produce
and commit means the batch is scored again (downstream deduplicates by
document id), never lost. See ``docs/scaling.md``. Between batches the scorer
may switch models (:mod:`stream.scorer.swap`); a candidate may score in shadow
(:mod:`stream.scorer.shadow`). See ``docs/models.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry

from stream.contracts.deadletters import dead_letter
from stream.contracts.errors import SchemaError
from stream.contracts.topics import TopicNames
from stream.deadletters import SAFE_ORIGINAL_BYTES
from stream.http import MetricsServer
from stream.kafka import KafkaSettings, make_consumer, make_producer
from stream.runtime import ReloadFlag, StopFlag
from stream.scorer.announce import announce
from stream.scorer.batch import BatchScorer, Outcome
from stream.scorer.batching import BatchCollector
from stream.scorer.delivery import DeliveryError, commit_offsets, deliver
from stream.scorer.drift import ScorerDrift
from stream.scorer.metrics import ScorerMetrics, ShadowMetrics, SwitchMetrics
from stream.scorer.rebalance import AssignmentTracker
from stream.scorer.settings import ScorerSettings
from stream.scorer.shadow import ShadowScorer
from stream.scorer.swap import ModelSwitcher

if TYPE_CHECKING:
    from models.scoring import Classifier

__all__ = ["ScorerService", "ScorerStats"]

logger = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScorerStats:
    """Counts since start; ``scored`` and ``dead_lettered`` are acknowledged by the broker."""

    consumed: int = 0
    scored: int = 0
    dead_lettered: int = 0
    batches: int = 0
    #: Batches whose records were produced but whose commit the group refused.
    commit_failures: int = 0
    #: Batches re-read because the broker did not acknowledge their records.
    retries: int = 0


class ScorerService:
    """Consume raw documents, score them in micro-batches, produce scored documents.

    ``run(stop)`` loops until ``stop`` is set, then finishes the current batch,
    commits and closes its clients. Safe to run in a thread of another process
    (it installs no signal handlers and configures no logging).
    """

    def __init__(
        self,
        settings: ScorerSettings,
        *,
        kafka: KafkaSettings,
        topics: TopicNames | None = None,
        registry: CollectorRegistry | None = None,
        classifier: Classifier | None = None,
        clock: Callable[[], datetime] = _utcnow,
        reload: ReloadFlag | None = None,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.topics = topics or TopicNames()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = ScorerMetrics(self.registry)
        self.drift = ScorerDrift(
            self.registry,
            window_documents=settings.drift_window_documents,
            confidence_floor=settings.drift_confidence_floor,
        )
        self.classifier = classifier
        self.metrics_server: MetricsServer | None = None
        self._clock = clock
        self._tracker = AssignmentTracker(self.metrics)
        self._stats = ScorerStats()
        self._next_offset: dict[TopicPartition, int] = {}
        self._running = False
        self._switcher = ModelSwitcher(
            self._open,
            metrics=SwitchMetrics(self.registry),
            model_dir=settings.model_dir,
            registry_dir=settings.registry_dir,
            poll_s=settings.registry_poll_s,
            reload=reload,
        )
        self.shadow: ShadowScorer | None = None
        self._rewound = False  # a batch was rewound for re-delivery: no switch until it is out

    @property
    def stats(self) -> ScorerStats:
        """A snapshot of the counters (the demo polls it to know when it is done)."""
        return self._stats

    @property
    def ready(self) -> bool:
        """True once the model is loaded and the consumer owns partitions."""
        return self._running and self.classifier is not None and bool(self._tracker.assigned)

    def status(self) -> str:
        """One line for ``/healthz``."""
        if self.classifier is None:
            return "loading the model"
        if not self._running:
            return "not running"
        owned = len(self._tracker.assigned)
        if not owned:
            return "waiting for a partition assignment"
        card, provider = self.classifier.card, self.classifier.provider
        return f"scoring {owned} partitions with {card.name} {card.version} on {provider}"

    def run(self, stop: StopFlag) -> None:
        """Serve metrics, load the model, then score until ``stop`` is set."""
        server = MetricsServer(
            self.registry,
            host=self.settings.metrics_host,
            port=self.settings.metrics_port,
            ready=lambda: self.ready,
            status=self.status,
        ).start()
        self.metrics_server = server
        logger.info("scorer metrics and health on %s", server.url)
        try:
            classifier = self.load_model()
            self._consume(classifier, stop)
        finally:
            self._running = False
            server.stop()

    def load_model(self) -> Classifier:
        """Load the model (unless one was injected), log and export what runs where.

        ``run`` calls it; raises :class:`~models.exceptions.ProviderError` when
        ``require_gpu`` is set and no GPU is usable, and
        :class:`~models.exceptions.ModelDirError` for a bad model directory.
        """
        if self.classifier is None:
            self.classifier = self._open(self._switcher.initial())
        announce(self.classifier, self.settings, self.metrics, self.drift)
        s = self.settings
        if s.shadow_model_dir is not None and self.shadow is None:
            self.shadow = ShadowScorer(
                self._batch_scorer(self._open(s.shadow_model_dir), live=False),
                topic=self.topics.scored_shadow,
                metrics=ShadowMetrics(self.registry),
                produce_timeout_s=s.produce_timeout_s,
            )
        return self.classifier

    def _open(self, model_dir: Path | None) -> Classifier:
        """Load a model directory with this scorer's provider settings."""
        from models.scoring import Classifier

        s = self.settings
        return Classifier.load(
            model_dir,
            provider=s.provider,
            device_id=s.device_id,
            require_gpu=s.require_gpu,
            intra_op_threads=s.intra_op_threads,
            max_batch_tokens=s.max_batch_tokens,
        )

    def _batch_scorer(self, classifier: Classifier, *, live: bool) -> BatchScorer:
        """A batch scorer for ``classifier``; only the live one feeds the drift window."""
        s = self.settings
        return BatchScorer(
            classifier,
            clock=self._clock,
            inference_batch_size=s.inference_batch_size,
            max_document_tokens=s.max_document_tokens,
            max_original_bytes=s.deadletter_max_original_bytes,
            observe=self.drift.observe if live else None,
        )

    def _consume(self, classifier: Classifier, stop: StopFlag) -> None:
        s = self.settings
        scorer = self._batch_scorer(classifier, live=True)
        producer = make_producer(self.kafka)
        try:
            consumer = make_consumer(
                self.kafka,
                group_id=s.group_id,
                max_poll_records=s.batch_max_size,
                max_poll_interval_ms=s.max_poll_interval_ms,
                fetch_max_wait_ms=s.fetch_max_wait_ms,
                # Round-robin spreads the partitions of both raw topics evenly over the
                # group; range stays as the fallback every kafka-python member supports.
                partition_assignment_strategy=(
                    RoundRobinPartitionAssignor,
                    RangePartitionAssignor,
                ),
            )
            try:
                consumer.subscribe(list(self.topics.raw), listener=self._tracker)
                self._running = True
                self._loop(consumer, producer, scorer, stop)
            finally:
                # Never commit on close: offsets are committed only after delivery.
                consumer.close(autocommit=False)
        finally:
            producer.close(timeout=s.produce_timeout_s)
        logger.info("scorer stopped: %s", self._stats)

    def _loop(
        self,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        scorer: BatchScorer,
        stop: StopFlag,
    ) -> None:
        s = self.settings
        collector = BatchCollector(
            consumer,
            max_size=s.batch_max_size,
            max_wait_ms=s.batch_max_wait_ms,
            idle_poll_ms=s.idle_poll_ms,
        )
        while not stop.is_set():
            batch = collector.collect(stop)
            if batch:
                self._process(consumer, producer, scorer, batch, stop)
            self._update_lag(consumer)
            scorer = self._switch(scorer)

    def _switch(self, scorer: BatchScorer) -> BatchScorer:
        """The scorer of the next batch: a new model's when a switch is due and it loaded."""
        if self._rewound:
            return scorer
        classifier = self._switcher.poll()
        if classifier is None:
            return scorer
        self.classifier = classifier
        announce(classifier, self.settings, self.metrics, self.drift)
        return self._batch_scorer(classifier, live=True)

    def _process(
        self,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        scorer: BatchScorer,
        batch: list[ConsumerRecord],
        stop: StopFlag,
    ) -> None:
        self.metrics.consumed.inc(len(batch))
        self._stats = replace(self._stats, consumed=self._stats.consumed + len(batch))
        batch = self._owned(consumer, batch)
        if not batch:
            return
        self.metrics.batch_size.observe(len(batch))
        result = scorer.score(batch)
        self.metrics.inference.observe(result.inference_s)
        if result.inference_s * 2_000 > self.settings.max_poll_interval_ms:
            logger.warning(
                "scoring %s records took %.1f s, over half of max_poll_interval_ms=%s: "
                "lower FINSENTINEL_SCORER_BATCH_MAX_SIZE or the group will evict this scorer",
                len(batch), result.inference_s, self.settings.max_poll_interval_ms,
            )  # fmt: skip
        try:
            delivered = self._deliver(producer, result.outcomes)
        except DeliveryError as exc:
            self._retry(consumer, batch, exc, stop)
            return
        self._record(delivered)
        self._commit_batch(consumer, batch)
        if self.shadow is not None:
            self.shadow.run(producer, delivered)

    def _deliver(self, producer: KafkaProducer, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """Produce and await ``outcomes`` (tests override it to simulate broker failures)."""
        return deliver(
            producer,
            self.topics,
            outcomes,
            timeout_s=self.settings.produce_timeout_s,
            too_large=self._too_large,
        )

    def _owned(self, consumer: KafkaConsumer, batch: list[ConsumerRecord]) -> list[ConsumerRecord]:
        """Drop records of partitions revoked while the batch was collected (abandoned)."""
        owned = consumer.assignment()
        kept = [r for r in batch if TopicPartition(r.topic, r.partition) in owned]
        if len(kept) < len(batch):
            logger.info(
                "abandoning %s records of revoked partitions; their new owner reads them "
                "from the last committed offset",
                len(batch) - len(kept),
            )
        return kept

    def _too_large(self, outcome: Outcome, error: Exception) -> Outcome:
        """The dead letter of an output the producer refused as too large for one message."""
        what = "scored document" if outcome.scored is not None else "dead letter"
        letter = dead_letter(
            SchemaError("too_large", f"{what} does not fit one Kafka message: {error}"),
            stage="score",
            failed_at=self._clock(),
            record=outcome.record,
            # Small enough to fit whatever the producer's size limit is.
            max_original_bytes=min(
                self.settings.deadletter_max_original_bytes, SAFE_ORIGINAL_BYTES
            ),
        )
        return Outcome(outcome.record, dead=letter)

    def _record(self, delivered: Sequence[Outcome]) -> None:
        scored = dead = 0
        for outcome in delivered:
            if outcome.scored is not None:
                doc = outcome.scored
                if doc.unsupported_reason is None:
                    self.metrics.scored.labels(topic=doc.topic, sentiment=doc.sentiment).inc()
                else:  # the model's sentiment on a text it cannot read: not a sentiment
                    self.metrics.unsupported.labels(reason=doc.unsupported_reason).inc()
                latency = (doc.scored_at - doc.fetched_at).total_seconds()
                self.metrics.latency.observe(max(0.0, latency))
                scored += 1
            elif outcome.dead is not None:
                self.metrics.dead_letters.inc(outcome.dead.reason)
                dead += 1
        self._rewound = False
        st = self._stats
        self._stats = replace(
            st, scored=st.scored + scored, dead_lettered=st.dead_lettered + dead,
            batches=st.batches + 1,
        )  # fmt: skip

    def _commit_batch(self, consumer: KafkaConsumer, batch: list[ConsumerRecord]) -> None:
        offsets = commit_offsets(batch, frozenset(consumer.assignment()))
        if not offsets:
            return
        try:
            self._commit(consumer, offsets)
        except KafkaError as exc:
            # Everything was produced: the next owner scores these records again.
            logger.warning("offset commit refused (records will be rescored): %s", exc)
            self.metrics.batches.labels(outcome="commit_failed").inc()
            self._stats = replace(self._stats, commit_failures=self._stats.commit_failures + 1)
            return
        self.metrics.batches.labels(outcome="committed").inc()
        for tp, meta in offsets.items():
            self._next_offset[tp] = meta.offset

    def _commit(
        self, consumer: KafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]
    ) -> None:
        """Commit ``offsets`` synchronously (tests override it to simulate a crash)."""
        consumer.commit(offsets=offsets)

    def _retry(
        self,
        consumer: KafkaConsumer,
        batch: list[ConsumerRecord],
        error: DeliveryError,
        stop: StopFlag,
    ) -> None:
        """Rewind to the batch's first records and try again after a pause."""
        logger.warning("batch of %s not delivered, re-reading it: %s", len(batch), error)
        self.metrics.batches.labels(outcome="retried").inc()
        self._rewound = True
        self._stats = replace(self._stats, retries=self._stats.retries + 1)
        owned = consumer.assignment()
        first: dict[TopicPartition, int] = {}
        for record in batch:
            tp = TopicPartition(record.topic, record.partition)
            first[tp] = min(first.get(tp, record.offset), record.offset)
        for tp, offset in first.items():
            if tp in owned:
                consumer.seek(tp, offset)
        stop.wait(self.settings.retry_backoff_ms / 1_000)

    def _update_lag(self, consumer: KafkaConsumer) -> None:
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            position = self._next_offset.get(tp)
            if high is None or position is None:
                continue
            self.metrics.lag.labels(topic=tp.topic, partition=str(tp.partition)).set(
                max(0, high - position)
            )
