"""Where a replay reads history: Kafka by record time range, or the Parquet archive.

**Kafka** (:func:`kafka_time_range`): a consumer *without* a group id,
positioned with ``assign()`` and ``seek()``; it never joins a group and never
commits, so a replay cannot move a live service's offsets. Each partition
starts at ``offsets_for_times(start_ms)`` and stops at its first record with a
timestamp at or after ``end_ms`` (exactly the offset ``offsets_for_times(end_ms)``
would name) or when nothing new arrives for ``idle_timeout_s`` (the end of the
log). Records are filtered on ``start_ms <= timestamp < end_ms``, so
out-of-order ``CreateTime`` stamps never leak in.

The lookup is verified on the first record fetched: it must be the offset and
timestamp the broker named. The embedded Tansu broker fails that check (it
answers offset 0 stamped "now" for any time), and so does any broker whose
time index cannot be trusted; such a partition is scanned from its beginning
instead, filtered by record timestamp: slower, equally correct.

**Archive** (:func:`archive_documents`): documents from :mod:`stream.history.query`
in ``published_at`` order, filtered by range, source, ticker and topic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from stream.contracts.errors import BrokerError, SchemaError
from stream.contracts.schemas import RawDocument, ScoredDocument, decode
from stream.history.query import HistoryQuery, iter_history
from stream.history.schema import from_row
from stream.kafka import KafkaSettings, make_consumer

__all__ = ["KafkaRecord", "archive_documents", "decode_record", "kafka_time_range"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KafkaRecord:
    """One record read back from Kafka."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes


@dataclass
class _Cursor:
    """Per-partition progress of a time-range read."""

    expected: tuple[int, int] | None  # (offset, timestamp) the broker named, until verified
    done: bool = False


def _partitions(consumer: KafkaConsumer, topics: Sequence[str]) -> list[TopicPartition]:
    out = []
    for topic in topics:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise BrokerError(f"topic {topic!r} does not exist or has no partitions")
        out += [TopicPartition(topic, p) for p in sorted(parts)]
    return out


def _position(consumer: KafkaConsumer, tps: list[TopicPartition], start_ms: int) -> dict:
    """Seek every partition to its start; return the cursors (``None``: nothing to read)."""
    found = consumer.offsets_for_times(dict.fromkeys(tps, start_ms))
    begin = consumer.beginning_offsets(tps)
    cursors: dict[TopicPartition, _Cursor] = {}
    for tp in tps:
        hit = found.get(tp)
        if hit is None:
            continue  # no record at or after start_ms
        consumer.seek(tp, hit.offset)
        expected = (hit.offset, hit.timestamp) if hit.offset > begin[tp] else None
        cursors[tp] = _Cursor(expected)
    return cursors


def kafka_time_range(
    kafka: KafkaSettings,
    topics: Sequence[str],
    start_ms: int,
    end_ms: int,
    *,
    idle_timeout_s: float = 3.0,
    poll_timeout_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    consumer: KafkaConsumer | None = None,
) -> Iterator[KafkaRecord]:
    """Records of ``topics`` with ``start_ms <= timestamp < end_ms``, per partition in order."""
    if end_ms <= start_ms:
        raise ValueError(f"end_ms {end_ms} must be after start_ms {start_ms}")
    own = consumer is None
    consumer = consumer or make_consumer(kafka, group_id=None)
    try:
        tps = _partitions(consumer, topics)
        consumer.assign(tps)
        cursors = _position(consumer, tps, start_ms)
        consumer.pause(*[tp for tp in tps if tp not in cursors])
        window = (start_ms, end_ms)
        yield from _drain(consumer, cursors, window, idle_timeout_s, poll_timeout_s, clock)
    except KafkaError as exc:
        raise BrokerError(f"replay from Kafka failed: {exc}") from exc
    finally:
        if own:
            consumer.close(autocommit=False)


def _drain(
    consumer: KafkaConsumer,
    cursors: dict[TopicPartition, _Cursor],
    window: tuple[int, int],
    idle_timeout_s: float,
    poll_timeout_s: float,
    clock: Callable[[], float],
) -> Iterator[KafkaRecord]:
    last_data = clock()
    while any(not c.done for c in cursors.values()):
        polled = consumer.poll(timeout_ms=int(poll_timeout_s * 1000))
        if any(polled.values()):
            last_data = clock()
        elif clock() - last_data >= idle_timeout_s:
            return
        for tp, records in polled.items():
            cursor = cursors.get(tp)
            if cursor is None or cursor.done:
                continue
            yield from _partition_records(consumer, tp, cursor, records, *window)


def _partition_records(
    consumer: KafkaConsumer,
    tp: TopicPartition,
    cursor: _Cursor,
    records: list[Any],
    start_ms: int,
    end_ms: int,
) -> Iterator[KafkaRecord]:
    if cursor.expected is not None:
        offset, stamp = cursor.expected
        cursor.expected = None
        first = records[0]
        if (first.offset, first.timestamp) != (offset, stamp):
            logger.warning(
                "offsets_for_times on %s[%d] named offset %d @%d but the log holds @%d there: "
                "the broker's time index is unreliable; scanning from the beginning",
                tp.topic, tp.partition, offset, stamp, first.timestamp,
            )  # fmt: skip
            consumer.seek_to_beginning(tp)
            return
    for r in records:
        if r.timestamp >= end_ms:
            cursor.done = True
            consumer.pause(tp)
            return
        if r.timestamp >= start_ms:
            yield KafkaRecord(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value or b"")


def decode_record(record: KafkaRecord) -> RawDocument:
    """The document in ``record``: scored when it has scores, raw otherwise."""
    try:
        return decode(record.value, ScoredDocument)
    except SchemaError as exc:
        if exc.reason != "schema_violation":
            raise
    return decode(record.value, RawDocument)


def archive_documents(
    root: Path, query: HistoryQuery, *, batch_rows: int = 10_000
) -> Iterator[RawDocument]:
    """Archived documents matching ``query`` in ``published_at`` order."""
    model = ScoredDocument if query.doc_type == "scored" else RawDocument
    for batch in iter_history(root, query, batch_rows=batch_rows):
        for row in batch.to_pylist():
            yield from_row(row, model)
