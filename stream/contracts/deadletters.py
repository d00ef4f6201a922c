"""The one dead-letter constructor: the original bytes (capped), the reason, where they came from.

Every stage that rejects a record (ingest, score, alerts, archive) builds its
:class:`~stream.contracts.schemas.DeadLetter` with :func:`dead_letter`, so a
dead letter always fits one Kafka message: an original longer than
``max_original_bytes`` is cut, ``truncated`` says so and ``original_bytes``
keeps its real size; the whole record stays in its source topic at the
partition and offset the letter names. Keys are cut to :data:`MAX_KEY_BYTES`.

>>> from collections import namedtuple
>>> from datetime import UTC, datetime
>>> Rec = namedtuple("Rec", "topic partition offset key value")
>>> t = datetime(2026, 1, 1, tzinfo=UTC)
>>> dl = dead_letter(SchemaError("too_large", "2 MB"), stage="archive", failed_at=t,
...                  record=Rec("raw", 2, 7, b"ACME", b"x" * 5000), max_original_bytes=1024)
>>> dl.stage, dl.truncated, dl.original_bytes, len(dl.original), dl.partition, dl.offset
('archive', True, 5000, 1024, 2, 7)
>>> small = dead_letter(SchemaError("malformed_json", "x"), stage="ingest", failed_at=t,
...                     original=b"{oops", key=b"wire")
>>> small.truncated, small.original, small.source_topic
(False, b'{oops', None)
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Final, Literal, Protocol

from stream.contracts.errors import SchemaError
from stream.contracts.schemas import DeadLetter

__all__ = [
    "DEFAULT_MAX_ORIGINAL_BYTES",
    "MAX_KEY_BYTES",
    "InputRecord",
    "Stage",
    "dead_letter",
    "shrink",
]

#: Default cap on the original bytes a dead letter carries: base64 makes 700 kB into
#: about 933 kB, under the 1 MiB message limit of Kafka's and kafka-python's defaults.
DEFAULT_MAX_ORIGINAL_BYTES: Final = 700_000
#: Keys longer than this are cut (a key is a ticker or a source name in practice).
MAX_KEY_BYTES: Final = 1_024

Stage = Literal["ingest", "score", "alerts", "archive", "replay"]


class InputRecord(Protocol):
    """The fields of a Kafka ``ConsumerRecord`` a dead letter keeps."""

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
    error: SchemaError,
    *,
    stage: Stage,
    failed_at: datetime,
    record: InputRecord | None = None,
    original: bytes | None = None,
    key: bytes | None = None,
    max_original_bytes: int = DEFAULT_MAX_ORIGINAL_BYTES,
) -> DeadLetter:
    """The :class:`DeadLetter` of a record that ``stage`` rejected with ``error``.

    ``record`` (a Kafka record) gives the original, key, topic, partition and
    offset; ``original`` and ``key`` give (or override) them for records that
    did not come from Kafka (the crawler's rejects).
    """
    if original is None:
        original = (record.value if record is not None else None) or b""
    if key is None and record is not None:
        key = record.key
    size = len(original)
    truncated = size > max_original_bytes or (key is not None and len(key) > MAX_KEY_BYTES)
    detail = error.detail
    if size > max_original_bytes:
        where = f"{record.topic}[{record.partition}]@{record.offset}" if record else "its source"
        detail = f"{detail} [original cut from {size} to {max_original_bytes} bytes; see {where}]"
    return DeadLetter.wrap(
        original[:max_original_bytes],
        SchemaError(error.reason, detail),
        stage=stage,
        failed_at=failed_at,
        source_topic=record.topic if record is not None else None,
        partition=record.partition if record is not None else None,
        offset=record.offset if record is not None else None,
        key=key[:MAX_KEY_BYTES] if key is not None else None,
        truncated=truncated,
        original_bytes=size,
    )


def shrink(letter: DeadLetter, max_original_bytes: int) -> DeadLetter:
    """``letter`` with its original cut to ``max_original_bytes`` (for a broker with a
    smaller message limit than expected); unchanged if it is short enough already.

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> dl = dead_letter(SchemaError("too_large", "x"), stage="score", failed_at=t,
    ...                  original=b"y" * 100)
    >>> s = shrink(dl, 10)
    >>> len(s.original), s.truncated, s.original_bytes
    (10, True, 100)
    """
    original = letter.original
    if len(original) <= max_original_bytes:
        return letter
    size = letter.original_bytes if letter.original_bytes is not None else len(original)
    return letter.model_copy(
        update={
            "original_b64": base64.b64encode(original[:max_original_bytes]).decode(),
            "truncated": True,
            "original_bytes": size,
        }
    )
