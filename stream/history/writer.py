"""Atomic, rotating Parquet files for the archive.

A :class:`PartFile` writes one hive partition's rows to ``part-*.parquet.tmp``;
:meth:`PartFile.close` writes the footer, ``fsync``\\ s the file, renames it to
``*.parquet`` and ``fsync``\\ s the directory, so a file either exists complete
under its final name or not at all. :class:`RollingWriter` keeps one open
:class:`PartFile` per ``(doc_type, date, topic)`` and closes it when it grows
past ``max_file_bytes`` or gets older than ``max_file_age_s``. It remembers,
per Kafka partition, the lowest offset still held by an open file, which is
what the sink may commit up to (see :meth:`RollingWriter.pending_low_offsets`).

>>> import tempfile, pathlib
>>> from datetime import datetime, timezone
>>> from stream.contracts.schemas import RawDocument
>>> from stream.history.schema import to_row
>>> t = datetime(2026, 1, 5, tzinfo=timezone.utc)
>>> doc = RawDocument(id="a", source="s", kind="news", title="x", published_at=t, fetched_at=t)
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> w = RollingWriter(root, max_file_bytes=1 << 20, max_file_age_s=60, clock=lambda: 0.0)
>>> w.add("raw", "2026-01-05", "news", to_row(doc, partition=0, offset=7), 100, ("news", 0, 7))
>>> w.pending_low_offsets()
{('news', 0): 7}
>>> [f.path.relative_to(root).parts[:3] for f in w.close_all()]
[('raw', 'date=2026-01-05', 'topic=news')]
>>> w.pending_low_offsets()
{}
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from stream.files import durable_replace
from stream.history.schema import DocType, schema_for

__all__ = ["ClosedFile", "PartFile", "RollingWriter", "remove_stale_tmp"]

logger = logging.getLogger(__name__)

TMP_SUFFIX = ".parquet.tmp"
PartKey = tuple[DocType, str, str]
#: ``(topic, partition)`` of Kafka.
TP = tuple[str, int]


@dataclass(frozen=True)
class ClosedFile:
    """A file that is durably on disk under its final name."""

    path: Path
    rows: int
    bytes: int
    #: Seconds spent in :meth:`PartFile.close` (footer, fsync, rename).
    close_s: float


@dataclass
class PartFile:
    """One open ``*.parquet.tmp`` file of a partition, closed atomically."""

    final_path: Path
    schema: pa.Schema
    opened_at: float
    compression: str = "zstd"
    row_group_rows: int = 10_000
    rows: int = 0
    _buffer: list[dict[str, Any]] = field(default_factory=list)
    _buffered_bytes: int = 0
    _on_disk_bytes: int = 0
    _writer: pq.ParquetWriter | None = None

    @property
    def tmp_path(self) -> Path:
        """Where the file is written until it is closed."""
        return self.final_path.with_name(self.final_path.name + ".tmp")

    def add(self, row: dict[str, Any], size_hint: int) -> None:
        """Buffer ``row``; ``size_hint`` (the message size) estimates the file size."""
        self._buffer.append(row)
        self._buffered_bytes += size_hint
        self.rows += 1
        if len(self._buffer) >= self.row_group_rows:
            self._flush()

    def estimated_bytes(self) -> int:
        """Bytes on disk so far plus the (uncompressed) size of the buffered rows."""
        return self._on_disk_bytes + self._buffered_bytes

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            self.final_path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(
                self.tmp_path, self.schema, compression=self.compression
            )
        self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=self.schema))
        self._buffer.clear()
        self._buffered_bytes = 0
        self._on_disk_bytes = self.tmp_path.stat().st_size

    def close(self, clock: Callable[[], float] = time.monotonic) -> ClosedFile:
        """Write the footer, fsync, rename to the final name and fsync the directory."""
        started = clock()
        self._flush()
        assert self._writer is not None  # a PartFile exists only once it holds a row
        self._writer.close()
        durable_replace(self.tmp_path, self.final_path)
        size = self.final_path.stat().st_size
        return ClosedFile(self.final_path, self.rows, size, max(0.0, clock() - started))


class RollingWriter:
    """One open :class:`PartFile` per partition, rotated by size and age."""

    def __init__(
        self,
        root: Path,
        *,
        max_file_bytes: int,
        max_file_age_s: float,
        row_group_rows: int = 10_000,
        compression: str = "zstd",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = Path(root)
        self.max_file_bytes = max_file_bytes
        self.max_file_age_s = max_file_age_s
        self.row_group_rows = row_group_rows
        self.compression = compression
        self._clock = clock
        self._files: dict[PartKey, PartFile] = {}
        #: Lowest Kafka offset of each partition held by each open file.
        self._low: dict[PartKey, dict[TP, int]] = {}

    def __len__(self) -> int:
        return len(self._files)

    def add(
        self,
        doc_type: DocType,
        date: str,
        topic: str,
        row: dict[str, Any],
        size_hint: int,
        origin: tuple[str, int, int] | None = None,
    ) -> ClosedFile | None:
        """Append ``row``; returns the file closed because it grew too big, if any."""
        key: PartKey = (doc_type, date, topic)
        part = self._files.get(key)
        if part is None:
            part = self._open(key)
        part.add(row, size_hint)
        if origin is not None:
            low = self._low.setdefault(key, {})
            tp = (origin[0], origin[1])
            low[tp] = min(low.get(tp, origin[2]), origin[2])
        if part.estimated_bytes() >= self.max_file_bytes:
            return self._close(key)
        return None

    def _open(self, key: PartKey) -> PartFile:
        doc_type, date, topic = key
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        name = f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
        path = self.root / doc_type / f"date={date}" / f"topic={topic}" / name
        part = PartFile(
            path,
            schema_for(doc_type),
            self._clock(),
            compression=self.compression,
            row_group_rows=self.row_group_rows,
        )
        self._files[key] = part
        return part

    def _close(self, key: PartKey) -> ClosedFile:
        part = self._files.pop(key)
        self._low.pop(key, None)
        closed = part.close(self._clock)
        logger.info("closed %s (%d rows, %d bytes)", closed.path, closed.rows, closed.bytes)
        return closed

    def close_expired(self) -> list[ClosedFile]:
        """Close every file older than ``max_file_age_s``."""
        now = self._clock()
        expired = [k for k, p in self._files.items() if now - p.opened_at >= self.max_file_age_s]
        return [self._close(k) for k in sorted(expired)]

    def close_all(self) -> list[ClosedFile]:
        """Close every open file (shutdown, rebalance)."""
        return [self._close(k) for k in sorted(self._files)]

    def pending_low_offsets(self) -> dict[TP, int]:
        """Per Kafka partition, the lowest offset not yet in a closed file."""
        out: dict[TP, int] = {}
        for low in self._low.values():
            for tp, offset in low.items():
                out[tp] = min(out.get(tp, offset), offset)
        return out


def remove_stale_tmp(root: Path, *, older_than_s: float, now: float | None = None) -> int:
    """Delete ``*.parquet.tmp`` leftovers of a crash; their records were never committed."""
    now = time.time() if now is None else now
    removed = 0
    for path in Path(root).rglob(f"*{TMP_SUFFIX}"):
        if now - path.stat().st_mtime >= older_than_s:
            logger.warning("removing unfinished archive file %s (left by a crash)", path)
            path.unlink()
            removed += 1
    return removed
