"""Read the Parquet archive by time range and filters, in event-time order, in chunks.

The archive is partitioned by UTC event date, so a query reads one day at a
time: the day's matching rows (only the requested columns) are loaded, sorted
by ``published_at`` and handed out in record batches of ``batch_rows``. Memory
is bounded by one day of matching rows, whatever the length of the range.
Duplicates left by an at-least-once restart of the archive sink are dropped by
``(topic, kafka_partition, kafka_offset)``.

>>> q = HistoryQuery(start=datetime(2026, 1, 5, tzinfo=UTC), end=datetime(2026, 1, 7, tzinfo=UTC))
>>> q.dates(["2026-01-04", "2026-01-05", "2026-01-06", "2026-01-07"])
['2026-01-05', '2026-01-06']
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from stream.contracts.errors import FinSentinelError
from stream.contracts.schemas import ScoredDocument
from stream.history.schema import PARTITION_SCHEMA, DocType, from_row, schema_for

__all__ = [
    "HistoryError",
    "HistoryQuery",
    "archive_dates",
    "iter_days",
    "iter_history",
    "latest_scored",
    "read_history",
]

logger = logging.getLogger(__name__)

_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_ORDER = ("published_at", "id", "topic", "kafka_partition", "kafka_offset")


class HistoryError(FinSentinelError, ValueError):
    """The archive cannot be read as asked (missing directory, unknown column)."""


@dataclass(frozen=True)
class HistoryQuery:
    """Which archived documents to read: ``[start, end)`` on ``published_at`` plus filters.

    Empty filter tuples mean "all". ``topics`` are Kafka topic names (the
    ``topic=`` partition), ``tickers`` match when a document mentions any of them,
    ``ids`` are document ids.
    """

    doc_type: DocType = "scored"
    start: datetime | None = None
    end: datetime | None = None
    sources: tuple[str, ...] = ()
    tickers: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise HistoryError(f"{name} must be timezone-aware (UTC), got {value}")
        if self.start and self.end and self.end <= self.start:
            raise HistoryError(f"end {self.end} must be after start {self.start}")

    def dates(self, available: Iterable[str]) -> list[str]:
        """The partition dates that can hold documents of the range, in order."""
        first = self.start.astimezone(UTC).date().isoformat() if self.start else None
        last = None
        if self.end:
            last = (self.end.astimezone(UTC) - timedelta(microseconds=1)).date().isoformat()
        return sorted(
            d
            for d in set(available)
            if (first is None or d >= first) and (last is None or d <= last)
        )

    def row_filter(self) -> ds.Expression | None:
        """The pushed-down filter (time range, sources, topics, ids); tickers are applied after."""
        parts: list[ds.Expression] = []
        if self.start:
            parts.append(
                ds.field("published_at") >= pa.scalar(self.start, pa.timestamp("us", "UTC"))
            )
        if self.end:
            parts.append(ds.field("published_at") < pa.scalar(self.end, pa.timestamp("us", "UTC")))
        if self.sources:
            parts.append(ds.field("source").isin(list(self.sources)))
        if self.topics:
            parts.append(ds.field("topic").isin(list(self.topics)))
        if self.ids:
            parts.append(ds.field("id").isin(list(self.ids)))
        if not parts:
            return None
        expr = parts[0]
        for p in parts[1:]:
            expr = expr & p
        return expr


def archive_dates(root: Path, doc_type: DocType) -> list[str]:
    """The ``date=`` partitions present under ``root/doc_type``, in order."""
    base = Path(root) / doc_type
    if not base.is_dir():
        return []
    return sorted(m.group(1) for p in base.iterdir() if (m := _DATE_DIR.match(p.name)))


def _day_dataset(root: Path, doc_type: DocType, date: str) -> ds.Dataset | None:
    base = Path(root) / doc_type
    files = sorted(str(p) for p in (base / f"date={date}").glob("topic=*/*.parquet"))
    if not files:
        return None
    schema = pa.unify_schemas([schema_for(doc_type), PARTITION_SCHEMA])
    return ds.dataset(
        files,
        schema=schema,
        format="parquet",
        partitioning=ds.partitioning(PARTITION_SCHEMA, flavor="hive"),
        partition_base_dir=str(base),
    )


def _with_tickers(table: pa.Table, tickers: Sequence[str]) -> pa.Table:
    lists = table["tickers"].combine_chunks() if table.num_rows else table["tickers"]
    if table.num_rows == 0:
        return table
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists)
    hit = pc.is_in(flat, value_set=pa.array(list(tickers), pa.string()))
    rows = np.unique(parents.filter(hit).to_numpy())
    return table.take(pa.array(rows, pa.int64()))


def _dedupe(table: pa.Table) -> pa.Table:
    if table.num_rows < 2 or "kafka_offset" not in table.column_names:
        return table
    keys = table.select(["topic", "kafka_partition", "kafka_offset"]).to_pandas()
    dup = keys.duplicated().to_numpy() & keys["kafka_offset"].notna().to_numpy()
    if not dup.any():
        return table
    logger.info("dropping %d duplicate archive rows", int(dup.sum()))
    return table.filter(pa.array(~dup))


def _read_day(
    root: Path, query: HistoryQuery, date: str, columns: Sequence[str] | None
) -> pa.Table | None:
    dataset = _day_dataset(root, query.doc_type, date)
    if dataset is None:
        return None
    needed = None
    if columns is not None:
        extra = [c for c in (*_ORDER, "tickers") if c not in columns]
        needed = list(dict.fromkeys([*columns, *extra]))
    try:
        table = dataset.to_table(columns=needed, filter=query.row_filter())
    except (pa.ArrowInvalid, KeyError) as exc:
        raise HistoryError(f"cannot read archive day {date}: {exc}") from exc
    if query.tickers:
        table = _with_tickers(table, query.tickers)
    table = _dedupe(table).sort_by([(c, "ascending") for c in _ORDER])
    return table.select(list(columns)) if columns is not None else table


def iter_days(
    root: Path, query: HistoryQuery, *, columns: Sequence[str] | None = None
) -> Iterator[tuple[str, pa.Table]]:
    """``(date, table)`` per archive day with matching rows, in order, rows sorted by time."""
    if not Path(root).is_dir():
        raise HistoryError(f"archive directory {root} does not exist")
    for date in query.dates(archive_dates(root, query.doc_type)):
        table = _read_day(root, query, date, columns)
        if table is not None and table.num_rows:
            yield date, table


def iter_history(
    root: Path,
    query: HistoryQuery,
    *,
    columns: Sequence[str] | None = None,
    batch_rows: int = 50_000,
) -> Iterator[pa.RecordBatch]:
    """Matching rows in ``published_at`` order, as record batches of at most ``batch_rows``.

    Rows carry the archive columns plus the ``date`` and ``topic`` partition keys.
    """
    for _, table in iter_days(root, query, columns=columns):
        yield from table.to_batches(max_chunksize=batch_rows)


def read_history(
    root: Path, query: HistoryQuery, *, columns: Sequence[str] | None = None
) -> pa.Table:
    """All matching rows as one table (small ranges; prefer :func:`iter_history`)."""
    batches = list(iter_history(root, query, columns=columns))
    if batches:
        return pa.Table.from_batches(batches)
    schema = pa.unify_schemas([schema_for(query.doc_type), PARTITION_SCHEMA])
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    return schema.empty_table()


def latest_scored(root: Path, ids: Iterable[str]) -> dict[str, ScoredDocument]:
    """The archived scored document of each of ``ids`` that the archive holds.

    A document scored more than once (a replay, a rescore) gives its latest
    scoring, by ``scored_at``. Reads every archive day, filtered on the ids.
    """
    wanted = tuple(dict.fromkeys(ids))
    if not wanted:
        return {}
    found: dict[str, ScoredDocument] = {}
    for batch in iter_history(root, HistoryQuery("scored", ids=wanted)):
        for row in batch.to_pylist():
            doc = from_row(row, ScoredDocument)
            if doc.id not in found or doc.scored_at >= found[doc.id].scored_at:
                found[doc.id] = doc
    return found
