"""Shadow scoring: a candidate model scores every live batch; its output never goes live.

With ``FINSENTINEL_SCORER_SHADOW_MODEL_DIR`` set, the scorer hands each batch,
once its live output is delivered and committed, to :class:`ShadowScorer`: the
candidate scores the same records, its documents go to the ``scored.shadow``
topic (keyed like the live ones, so a consumer can join them by document id),
and every document both models scored counts towards
``finsentinel_scorer_shadow_documents_total`` and, per head whose label differs,
``finsentinel_scorer_shadow_disagreements_total{head}``.

The shadow never delays or endangers the live output: it runs after the
commit, and its failures (a document the candidate cannot score, a record the
broker does not acknowledge) are logged and counted in
``finsentinel_scorer_shadow_failures_total{stage}``, never retried. A crash
between the commit and the shadow's produce loses that batch's shadow output.
Scoring in shadow doubles the inference work of every batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError

from stream.contracts.schemas import ScoredDocument, encode, message_key
from stream.scorer.batch import BatchScorer, Outcome
from stream.scorer.metrics import ShadowMetrics

__all__ = ["ShadowScorer", "disagreeing_heads"]

logger = logging.getLogger(__name__)


def disagreeing_heads(live: ScoredDocument, shadow: ScoredDocument) -> list[str]:
    """The heads (``sentiment``, ``topic``) on which the two documents' labels differ."""
    heads = []
    if live.sentiment != shadow.sentiment:
        heads.append("sentiment")
    if live.topic != shadow.topic:
        heads.append("topic")
    return heads


class ShadowScorer:
    """Score delivered batches again with a candidate model and publish to the shadow topic."""

    def __init__(
        self,
        scorer: BatchScorer,
        *,
        topic: str,
        metrics: ShadowMetrics,
        produce_timeout_s: float,
    ) -> None:
        self.scorer = scorer
        self._topic = topic
        self._metrics = metrics
        self._timeout_s = produce_timeout_s
        card = scorer.classifier.card
        metrics.model.info({"model_name": card.name, "model_version": card.version})
        logger.info("shadow model %s %s: output to %s", card.name, card.version, topic)

    def run(self, producer: KafkaProducer, delivered: Sequence[Outcome]) -> int:
        """Score the records the live model scored, compare, produce; the shadow count."""
        live = [o for o in delivered if o.scored is not None]
        if not live:
            return 0
        result = self.scorer.score([o.record for o in live])
        sent = []
        for mine, theirs in zip(live, result.outcomes, strict=True):
            if theirs.scored is None:
                self._metrics.failures.labels(stage="score").inc()
                continue
            assert mine.scored is not None
            self._metrics.documents.inc()
            for head in disagreeing_heads(mine.scored, theirs.scored):
                self._metrics.disagreements.labels(head=head).inc()
            sent.append(self._send(producer, theirs.scored))
        return self._settle(producer, [f for f in sent if f is not None])

    def _send(self, producer: KafkaProducer, doc: ScoredDocument) -> object | None:
        try:
            return producer.send(self._topic, value=encode(doc), key=message_key(doc))
        except KafkaError as exc:
            logger.warning("shadow document %s not produced: %s", doc.id, exc)
            self._metrics.failures.labels(stage="produce").inc()
            return None

    def _settle(self, producer: KafkaProducer, futures: list[object]) -> int:
        try:
            producer.flush(timeout=self._timeout_s)
        except KafkaError as exc:
            logger.warning("shadow batch of %s not flushed: %s", len(futures), exc)
        failed = [f for f in futures if not f.succeeded()]  # type: ignore[attr-defined]
        if failed:
            logger.warning("%s of %s shadow records not acknowledged", len(failed), len(futures))
            self._metrics.failures.labels(stage="produce").inc(len(failed))
        return len(futures) - len(failed)
