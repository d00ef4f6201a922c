"""Dead-letter records of the scorer: the original bytes, the reason, where they came from."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from stream.contracts.errors import SchemaError
from stream.contracts.schemas import DeadLetter

__all__ = ["InputRecord", "dead_letter"]


class InputRecord(Protocol):
    """The fields of a Kafka ``ConsumerRecord`` the scorer uses."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


def dead_letter(
    record: InputRecord,
    error: SchemaError,
    *,
    failed_at: datetime,
    max_original_bytes: int,
) -> DeadLetter:
    """The :class:`DeadLetter` of ``record``, rejected by the scorer with ``error``.

    Originals longer than ``max_original_bytes`` are cut (the detail says so) so
    the dead letter fits in one Kafka message; the full record stays in the raw
    topic at the partition and offset the dead letter names.

    >>> from collections import namedtuple
    >>> from datetime import UTC, datetime
    >>> Rec = namedtuple("Rec", "topic partition offset key value")
    >>> dl = dead_letter(Rec("raw", 2, 7, b"ACME", b"{oops"), SchemaError("malformed_json", "x"),
    ...                  failed_at=datetime(2026, 1, 1, tzinfo=UTC), max_original_bytes=1024)
    >>> dl.reason, dl.original, dl.partition, dl.offset
    ('malformed_json', b'{oops', 2, 7)
    """
    original = record.value if record.value is not None else b""
    detail = error.detail
    if len(original) > max_original_bytes:
        detail = (
            f"{detail} [original cut from {len(original)} to {max_original_bytes} bytes; "
            f"full record at {record.topic}[{record.partition}]@{record.offset}]"
        )
        original = original[:max_original_bytes]
    return DeadLetter.wrap(
        original,
        SchemaError(error.reason, detail),
        stage="score",
        failed_at=failed_at,
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
    )
