"""Corrections as files: export (Parquet, JSONL, CSV) and reading back for retraining.

JSONL and CSV use the shared export format, one row per corrected document with
exactly the columns :data:`EXPORT_COLUMNS`: ``sentiment`` is one of
negative/neutral/positive or empty, ``topic`` a topic label or empty, ``note``
possibly empty, ``created_at`` ISO-8601 in UTC, ``split`` ``train`` or
``holdout`` (:func:`~models.feedback.corrections.split_of`). Parquet has the
typed :data:`PARQUET_SCHEMA` (those columns plus the model that scored the text,
the source, the revision and whether it was published; empty labels are null).

:func:`load_corrections` reads a store or any of these files, so retraining and
model comparison take either.

>>> import tempfile, pathlib
>>> from datetime import datetime, timezone
>>> t = datetime(2026, 1, 5, 14, 30, tzinfo=timezone.utc)
>>> out = pathlib.Path(tempfile.mkdtemp()) / "fb.csv"
>>> export_corrections([Correction("a1", "Acme misses", "negative", None, t, "cli")], out)
1
>>> print(out.read_text().strip())
doc_id,text,sentiment,topic,note,created_at,split
a1,Acme misses,negative,,,2026-01-05T14:30:00+00:00,train
>>> [(c.doc_id, c.sentiment, c.topic) for c in load_corrections(out)]
[('a1', 'negative', None)]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models.data import read_table, table_format
from models.exceptions import FeedbackError
from models.feedback.corrections import Correction
from models.feedback.store import FeedbackStore, is_store
from stream.files import durable_replace

__all__ = [
    "EXPORT_COLUMNS",
    "PARQUET_SCHEMA",
    "export_corrections",
    "load_corrections",
    "read_rows",
]

#: Columns of the JSONL/CSV export, in order (the format other tools read).
EXPORT_COLUMNS: Final = ("doc_id", "text", "sentiment", "topic", "note", "created_at", "split")

PARQUET_SCHEMA: Final = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("sentiment", pa.string()),
        pa.field("topic", pa.string()),
        pa.field("note", pa.string()),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("model_name", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("revision", pa.int32(), nullable=False),
        pa.field("published", pa.bool_(), nullable=False),
    ]
)


def _record(c: Correction) -> dict[str, Any]:
    return {
        "doc_id": c.doc_id,
        "text": c.text,
        "sentiment": c.sentiment,
        "topic": c.topic,
        "note": c.note,
        "created_at": c.created_at.astimezone(UTC),
        "split": c.split,
        "model_name": c.model_name,
        "model_version": c.model_version,
        "source": c.source,
        "revision": c.revision,
        "published": c.published,
    }


def _shared(c: Correction) -> dict[str, str]:
    record = _record(c)
    record["created_at"] = record["created_at"].isoformat()
    return {k: "" if record[k] is None else str(record[k]) for k in EXPORT_COLUMNS}


def export_corrections(corrections: Sequence[Correction], path: Path | str) -> int:
    """Write ``corrections`` to ``path`` (format by extension, replaced atomically); the count."""
    path = Path(path)
    kind = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        if kind == "parquet":
            table = pa.Table.from_pylist([_record(c) for c in corrections], schema=PARQUET_SCHEMA)
            pq.write_table(table, tmp, compression="zstd")
        elif kind == "jsonl":
            with tmp.open("w", encoding="utf-8") as fh:
                for c in corrections:
                    fh.write(json.dumps(_shared(c), ensure_ascii=False) + "\n")
        else:
            frame = pd.DataFrame([_shared(c) for c in corrections], columns=list(EXPORT_COLUMNS))
            frame.to_csv(tmp, index=False)
        durable_replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise FeedbackError(f"cannot write {path}: {exc}") from exc
    return len(corrections)


def read_rows(path: Path | str) -> list[dict[str, str | None]]:
    """The rows of a CSV/JSONL/Parquet file, every value as text (``None``: empty).

    Ids stay as written: ``007`` is not the number 7. An unreadable or empty
    file raises :class:`~models.exceptions.DataError`.
    """
    frame = read_table(path, as_text=True)
    return [{str(k): _text(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    text = str(value)
    return text if text.strip() else None


def _from_export(row: dict[str, str | None], where: str) -> Correction:
    missing = [c for c in ("doc_id", "text", "created_at") if not row.get(c)]
    if missing:
        raise FeedbackError(f"{where}: no {', '.join(missing)}")
    try:
        created = datetime.fromisoformat(str(row["created_at"]).replace("Z", "+00:00"))
    except ValueError as exc:
        raise FeedbackError(f"{where}: created_at {row['created_at']!r} is not ISO-8601") from exc
    return Correction(
        doc_id=str(row["doc_id"]),
        text=str(row["text"]),
        sentiment=row.get("sentiment"),
        topic=row.get("topic"),
        note=row.get("note"),
        created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
        source=row.get("source") or "export",
        model_name=row.get("model_name"),
        model_version=row.get("model_version"),
        revision=int(row.get("revision") or 1),
    )


def load_corrections(path: Path | str) -> list[Correction]:
    """Every correction in a feedback store or in an exported file (any of the formats)."""
    path = Path(path)
    if not path.exists():
        raise FeedbackError(f"{path}: no feedback store or export file there")
    if is_store(path):
        with FeedbackStore(path) as store:
            return store.corrections()
    rows = read_rows(path)
    return [_from_export(row, f"{path} record {i}") for i, row in enumerate(rows, start=1)]
