"""Kafka plumbing of the alerting service: partition assignment, idle partitions,
dead letters and (informational) group commits."""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from alerts.checkpoint import Offsets
from stream.contracts.errors import BrokerError, SchemaError
from stream.contracts.schemas import DeadLetter, encode
from stream.runtime import StopFlag

__all__ = ["IdlePartitions", "assign_all", "commit_offsets", "dead_letter"]

logger = logging.getLogger(__name__)


def assign_all(
    consumer: KafkaConsumer,
    topic: str,
    saved: Offsets,
    stop: StopFlag,
    *,
    from_beginning: bool = False,
) -> list[int]:
    """Assign every partition of ``topic``; seek to the checkpointed offsets, else to
    the group's committed offsets, else to the beginning. The partitions, sorted.

    A fresh state (no checkpoint) over a group with committed offsets would skip
    everything before them: that is said in one warning, and ``from_beginning``
    seeks every partition to its beginning instead (the group's offsets follow at
    the first commit).
    """
    partitions: set[int] = set()
    while not partitions and not stop.is_set():
        try:
            partitions = consumer.partitions_for_topic(topic)
        except KafkaError as exc:
            raise BrokerError(f"cannot read the partitions of {topic}: {exc}") from exc
        if not partitions:
            logger.warning("topic %s has no partitions yet; waiting", topic)
            stop.wait(1.0)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    fresh = not saved
    committed = {} if saved else {tp: consumer.committed(tp) for tp in tps}
    resumed = {tp: o for tp, o in committed.items() if o is not None}
    if fresh and resumed:
        _report_fresh_state(consumer, topic, resumed, from_beginning=from_beginning)
    elif fresh and from_beginning:
        logger.info("fresh state: reading %s from the beginning", topic)
    elif from_beginning:
        logger.info("from_beginning ignored: the checkpoint's offsets are the truth")
    for tp in tps:
        offset = saved.get((tp.topic, tp.partition))
        if offset is None and not from_beginning:
            offset = committed.get(tp) if fresh else consumer.committed(tp)
        if offset is not None:
            consumer.seek(tp, offset)
        else:
            consumer.seek_to_beginning(tp)
    logger.info("consuming %s partitions %s", topic, sorted(partitions))
    return sorted(partitions)


def _report_fresh_state(
    consumer: KafkaConsumer,
    topic: str,
    resumed: dict[TopicPartition, int],
    *,
    from_beginning: bool,
) -> None:
    group = consumer.config.get("group_id")
    where = ", ".join(f"{tp.partition}@{o}" for tp, o in sorted(resumed.items()))
    if from_beginning:
        logger.info(
            "fresh state: reading %s from the beginning (--from-beginning), not from group "
            "%s's committed offsets (%s); the group's offsets follow at the first commit",
            topic,
            group,
            where,
        )
        return
    logger.warning(
        "fresh state (this database has consumed nothing) but group %s has committed offsets on "
        "%s (%s): resuming there, so earlier documents are not counted; use --from-beginning "
        "(FINSENTINEL_ALERTS_FROM_BEGINNING=true) to read the topic from its start",
        group,
        topic,
        where,
    )


def commit_offsets(consumer: KafkaConsumer, offsets: Offsets) -> None:
    """Commit group offsets for lag monitoring; failures are logged, not raised."""
    if not offsets:
        return
    try:
        consumer.commit(
            {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
        )
    except KafkaError as exc:  # informational only: the SQLite checkpoint is the truth
        logger.warning("committing group offsets failed (lag metrics only): %s", exc)


def dead_letter(
    producer: KafkaProducer | None,
    topic: str,
    tp: TopicPartition,
    record: Any,
    exc: SchemaError,
    *,
    failed_at: Any,
) -> None:
    """Log a rejected record and produce it, wrapped, to the dead-letter ``topic``."""
    logger.warning("%s[%d]@%d rejected: %s", tp.topic, tp.partition, record.offset, exc)
    letter = DeadLetter.wrap(
        record.value or b"",
        exc,
        stage="alerts",
        failed_at=failed_at,
        source_topic=tp.topic,
        partition=tp.partition,
        offset=record.offset,
        key=record.key,
    )
    if producer is not None:
        producer.send(topic, value=encode(letter))


class IdlePartitions:
    """Which partitions should stop holding the watermark back.

    A partition silent for ``idle_after_s`` *while records flow* (an empty or
    quiet partition) is idle; it rejoins with its next record. Silence before
    the first record anywhere does not count: a partition that simply has not
    been fetched yet must keep holding the watermark.

    >>> idle = IdlePartitions(idle_after_s=60)
    >>> idle.watch([0, 1])
    >>> idle.due(now_s=500.0)  # nothing flowed yet: nobody is idle
    []
    >>> idle.seen(0, now_s=1000.0)
    >>> idle.seen(0, now_s=1050.0)
    >>> idle.due(now_s=1050.0), idle.due(now_s=1061.0)
    ([], [1])
    """

    def __init__(self, *, idle_after_s: float | None) -> None:
        self.idle_after_s = idle_after_s
        self._seen: dict[int, float] = {}
        self._first_s: float | None = None

    def watch(self, partitions: list[int]) -> None:
        """Start tracking ``partitions``."""
        for p in partitions:
            self._seen.setdefault(p, float("-inf"))

    def seen(self, partition: int, *, now_s: float) -> None:
        """``partition`` delivered records at ``now_s``."""
        self._seen[partition] = now_s
        if self._first_s is None:
            self._first_s = now_s

    def due(self, *, now_s: float) -> list[int]:
        """Partitions that just became idle (each reported once until seen again)."""
        if self.idle_after_s is None or self._first_s is None:
            return []
        out = [
            p for p, s in self._seen.items() if now_s - max(s, self._first_s) >= self.idle_after_s
        ]
        for p in out:
            del self._seen[p]
        return out
