"""Produce a batch's outcomes and compute the offsets that may then be committed.

A batch counts as delivered only when the broker acknowledged every scored
record and every dead letter (``flush`` and then each future checked); only
then are offsets committed, as "last processed + 1" per partition, and only
for partitions this consumer still owns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from kafka import KafkaProducer, TopicPartition
from kafka.errors import KafkaError, MessageSizeTooLargeError
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata

from stream.contracts.deadletters import InputRecord
from stream.contracts.errors import BrokerError
from stream.contracts.schemas import encode
from stream.contracts.topics import TopicNames
from stream.scorer.batch import Outcome

__all__ = ["DeliveryError", "commit_offsets", "deliver"]

logger = logging.getLogger(__name__)


class DeliveryError(BrokerError):
    """The broker did not acknowledge every record of a batch; it is re-read, not committed."""


def _send(producer: KafkaProducer, topics: TopicNames, outcome: Outcome) -> FutureRecordMetadata:
    if outcome.scored is not None:
        return producer.send(topics.scored, value=encode(outcome.scored), key=outcome.key)
    assert outcome.dead is not None
    return producer.send(topics.deadletter, value=encode(outcome.dead), key=outcome.key)


def deliver(
    producer: KafkaProducer,
    topics: TopicNames,
    outcomes: Sequence[Outcome],
    *,
    timeout_s: float,
    too_large: Callable[[Outcome, Exception], Outcome],
) -> list[Outcome]:
    """Produce ``outcomes`` in order and wait for every acknowledgement.

    A scored document too large for one Kafka message is replaced by its dead
    letter (``too_large(outcome, error)``). Returns what was actually produced;
    raises :class:`DeliveryError` if anything was not acknowledged.
    """
    sent: list[tuple[Outcome, FutureRecordMetadata]] = []
    try:
        for outcome in outcomes:
            try:
                future = _send(producer, topics, outcome)
            except MessageSizeTooLargeError as exc:
                outcome = too_large(outcome, exc)
                future = _send(producer, topics, outcome)
            sent.append((outcome, future))
        producer.flush(timeout=timeout_s)
    except KafkaError as exc:
        raise DeliveryError(f"producing a batch of {len(outcomes)} failed: {exc}") from exc
    failed = [f for _, f in sent if not f.succeeded()]
    if failed:
        raise DeliveryError(
            f"{len(failed)} of {len(sent)} records were not acknowledged: {failed[0].exception}"
        )
    return [outcome for outcome, _ in sent]


def commit_offsets(
    records: Iterable[InputRecord], assigned: frozenset[TopicPartition]
) -> dict[TopicPartition, OffsetAndMetadata]:
    """Offsets to commit after ``records`` were delivered: last + 1 per owned partition.

    >>> from collections import namedtuple
    >>> Rec = namedtuple("Rec", "topic partition offset key value")
    >>> recs = [Rec("raw", 0, 4, None, b""), Rec("raw", 0, 5, None, b""),
    ...         Rec("raw", 1, 9, None, b"")]
    >>> offsets = commit_offsets(recs, frozenset({TopicPartition("raw", 0)}))
    >>> {tp.partition: o.offset for tp, o in offsets.items()}
    {0: 6}
    """
    last: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        last[tp] = max(last.get(tp, -1), record.offset)
    return {
        tp: OffsetAndMetadata(offset + 1, "", -1) for tp, offset in last.items() if tp in assigned
    }
