"""Parquet schemas of the archive, derived from the message models of the contracts
(:mod:`stream.contracts.schemas`).

One explicit pyarrow schema per document type: :data:`RAW_SCHEMA` for
:class:`~stream.contracts.schemas.RawDocument` and :data:`SCORED_SCHEMA` for
:class:`~stream.contracts.schemas.ScoredDocument`. Every model field is one column of
the same name; dict fields (``ticker_relevance``, ``topic_probs``,
``sentiment_probs``) are ``map<string, float64>`` columns and lists are
``list<string>``. Timestamps are ``timestamp[us, UTC]``. Three columns record
where the row came from in Kafka (``kafka_partition``, ``kafka_offset``,
``kafka_timestamp_ms``), so duplicates from an at-least-once restart can be
dropped by ``(topic, kafka_partition, kafka_offset)``. Scored rows also carry
``p_negative``/``p_neutral``/``p_positive`` copied from ``sentiment_probs``, so
vectorised readers (backtests) never have to unpack the map.

The hive partition keys ``date`` (UTC event date of ``published_at``) and
``topic`` live in the directory names, not in the files.

>>> from datetime import datetime, timezone
>>> from stream.contracts.schemas import RawDocument
>>> t = datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)
>>> doc = RawDocument(id="a1", source="wire", kind="news", title="Acme beats",
...                   tickers=["ACME"], ticker_relevance={"ACME": 1.0},
...                   published_at=t, fetched_at=t)
>>> row = to_row(doc)
>>> row["ticker_relevance"], event_date(doc)
([('ACME', 1.0)], '2026-01-05')
>>> from_row(row, RawDocument) == doc
True
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypeVar

import pyarrow as pa

from stream.contracts.schemas import SENTIMENT_LABELS, RawDocument, ScoredDocument

__all__ = [
    "DOC_TYPES",
    "KAFKA_COLUMNS",
    "PARTITION_SCHEMA",
    "RAW_SCHEMA",
    "SCORED_SCHEMA",
    "DocType",
    "event_date",
    "from_row",
    "schema_for",
    "to_row",
]

DocType = Literal["raw", "scored"]
DOC_TYPES: Final[tuple[DocType, ...]] = ("raw", "scored")

_TS = pa.timestamp("us", tz="UTC")
_PROBS = pa.map_(pa.string(), pa.float64())

#: Where a row came from in Kafka (nullable: rows written by other tools have none).
KAFKA_COLUMNS: Final = ("kafka_partition", "kafka_offset", "kafka_timestamp_ms")

_RAW_FIELDS: Final = [
    pa.field("schema_version", pa.int16(), nullable=False),
    pa.field("id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("title", pa.string(), nullable=False),
    pa.field("body", pa.string(), nullable=False),
    pa.field("author", pa.string()),
    pa.field("language", pa.string(), nullable=False),
    pa.field("tickers", pa.list_(pa.string()), nullable=False),
    pa.field("ticker_relevance", _PROBS, nullable=False),
    pa.field("tags", pa.list_(pa.string()), nullable=False),
    pa.field("copies", pa.int32(), nullable=False),
    pa.field("novelty", pa.float64()),
    pa.field("published_at", _TS, nullable=False),
    pa.field("fetched_at", _TS, nullable=False),
]
_SCORED_FIELDS: Final = [
    pa.field("topic_label", pa.string(), nullable=False),
    pa.field("topic_probs", _PROBS, nullable=False),
    pa.field("sentiment", pa.string(), nullable=False),
    pa.field("sentiment_probs", _PROBS, nullable=False),
    pa.field("sentiment_score", pa.float64(), nullable=False),
    pa.field("model_name", pa.string(), nullable=False),
    pa.field("model_version", pa.string(), nullable=False),
    pa.field("scored_at", _TS, nullable=False),
    # Nullable: older files have no such column and read as null.
    pa.field("detected_language", pa.string()),
    pa.field("unsupported_reason", pa.string()),
    *(pa.field(f"p_{label}", pa.float64(), nullable=False) for label in SENTIMENT_LABELS),
]
_KAFKA_FIELDS: Final = [
    pa.field("kafka_partition", pa.int32()),
    pa.field("kafka_offset", pa.int64()),
    pa.field("kafka_timestamp_ms", pa.int64()),
]

RAW_SCHEMA: Final = pa.schema([*_RAW_FIELDS, *_KAFKA_FIELDS])
#: ``topic_label`` holds the model's topic: ``topic`` is the hive key (the Kafka topic).
SCORED_SCHEMA: Final = pa.schema([*_RAW_FIELDS, *_SCORED_FIELDS, *_KAFKA_FIELDS])
#: The hive partition keys, outermost first.
PARTITION_SCHEMA: Final = pa.schema([("date", pa.string()), ("topic", pa.string())])

D = TypeVar("D", bound=RawDocument)


def schema_for(doc_type: DocType) -> pa.Schema:
    """The file schema of ``raw`` or ``scored`` rows."""
    return SCORED_SCHEMA if doc_type == "scored" else RAW_SCHEMA


def event_date(doc: RawDocument) -> str:
    """The UTC date of ``published_at``: the ``date=`` partition of the document."""
    return doc.published_at.date().isoformat()


def to_row(
    doc: RawDocument,
    *,
    partition: int | None = None,
    offset: int | None = None,
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """One archive row for ``doc`` (a dict matching :func:`schema_for` its type)."""
    row = doc.model_dump(mode="python")
    row["ticker_relevance"] = list(doc.ticker_relevance.items())
    if isinstance(doc, ScoredDocument):
        row["topic_label"] = row.pop("topic")
        row["topic_probs"] = list(doc.topic_probs.items())
        row["sentiment_probs"] = list(doc.sentiment_probs.items())
        for label in SENTIMENT_LABELS:
            row[f"p_{label}"] = float(doc.sentiment_probs.get(label, 0.0))  # type: ignore[call-overload]
    row["kafka_partition"] = partition
    row["kafka_offset"] = offset
    row["kafka_timestamp_ms"] = timestamp_ms
    return row


def from_row(row: dict[str, Any], model: type[D]) -> D:
    """Rebuild the document of an archive row (extra columns such as keys are ignored)."""
    data = {name: row[name] for name in model.model_fields if name in row}
    data["ticker_relevance"] = dict(row.get("ticker_relevance") or [])
    if issubclass(model, ScoredDocument):
        data["topic"] = row["topic_label"]
        data["topic_probs"] = dict(row.get("topic_probs") or [])
        data["sentiment_probs"] = dict(row.get("sentiment_probs") or [])
    return model.model_validate(data)
