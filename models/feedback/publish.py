"""Publish stored corrections to the ``feedback`` topic, so other consumers see them.

A correction is stored first (:class:`~models.feedback.store.FeedbackStore`),
then sent as a :class:`~stream.contracts.schemas.FeedbackRecord` keyed by its
document id (so one document's corrections stay in order on one partition).
Only an acknowledged send marks the revision published; whatever failed stays
pending for ``finsentinel feedback publish --pending``. Consumers keep the
highest ``revision`` per ``doc_id``: a re-send after a crash is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kafka.errors import KafkaError

from models.feedback.corrections import Correction
from models.feedback.store import FeedbackStore
from stream.contracts.errors import BrokerError
from stream.contracts.schemas import FeedbackRecord, encode

if TYPE_CHECKING:
    from stream.kafka import KafkaSettings

__all__ = ["PublishReport", "publish", "to_record"]

logger = logging.getLogger(__name__)


def to_record(c: Correction) -> FeedbackRecord:
    """The topic message of a stored correction."""
    return FeedbackRecord(
        doc_id=c.doc_id,
        text=c.text,
        sentiment=c.sentiment,  # type: ignore[arg-type]
        topic=c.topic,
        note=c.note,
        split=c.split,
        model_name=c.model_name,
        model_version=c.model_version,
        revision=max(c.revision, 1),
        created_at=c.created_at,
        source=c.source,
    )


@dataclass
class PublishReport:
    """Which corrections reached the topic and which did not (doc id -> why)."""

    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def raise_for_failures(self, topic: str) -> None:
        """:class:`BrokerError` (retriable) naming what did not reach ``topic``."""
        if self.failed:
            first_id, why = next(iter(self.failed.items()))
            raise BrokerError(
                f"{len(self.failed)} correction(s) not published to {topic} "
                f"(first: {first_id}: {why}); they stay pending for "
                "`finsentinel feedback publish --pending`"
            )


def publish(
    store: FeedbackStore,
    corrections: Sequence[Correction],
    *,
    kafka: KafkaSettings,
    topic: str,
    timeout_s: float = 30.0,
    producer: Any = None,
) -> PublishReport:
    """Send ``corrections`` to ``topic``; mark each acknowledged one published in ``store``.

    A broker that cannot be reached at all raises :class:`BrokerError`; a send
    that fails is recorded in the report (the caller decides how to say so).
    """
    report = PublishReport()
    if not corrections:
        return report
    from stream.kafka import ensure_topics, make_producer

    own = producer is None
    if own:
        ensure_topics(kafka, [topic])
        producer = make_producer(kafka)
    try:
        futures = []
        for c in corrections:
            try:
                value = encode(to_record(c))
                futures.append((c, producer.send(topic, key=c.doc_id.encode(), value=value)))
            except KafkaError as exc:  # e.g. no metadata within max_block_ms
                report.failed[c.doc_id] = f"{type(exc).__name__}: {exc}"
        for c, future in futures:
            try:
                future.get(timeout=timeout_s)
            except KafkaError as exc:
                report.failed[c.doc_id] = f"{type(exc).__name__}: {exc}"
                continue
            store.mark_published(c.doc_id, c.revision)
            report.sent.append(c.doc_id)
    finally:
        if own:
            producer.close(timeout=timeout_s)
    logger.info("published %d corrections to %s", len(report.sent), topic)
    return report
