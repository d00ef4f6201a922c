"""Replay history into Kafka or a file, at a chosen speed, optionally rescored.

A replay reads documents from Kafka or the archive (:mod:`stream.history.sources`),
puts them in event-time order, paces them (``1x`` real time, ``60x``, or
``max``), optionally rescores them with another model directory, and writes
them to a Kafka topic (:class:`TopicSink`) and/or a Parquet file
(:class:`ParquetSink`).

* **Order**: the archive source is already in ``published_at`` order; Kafka
  partitions are merged through a :class:`ReorderBuffer` that holds up to
  ``reorder_window`` items (bounded out-of-orderness, bounded memory).
* **Gaps**: :class:`Pacer` keeps the scaled gaps between events; ``max_gap_s``
  optionally caps one gap (nights, weekends) in wall seconds.
* **Rescoring**: documents go through :class:`models.documents.DocumentScorer`,
  the live scorer's own scoring code. The as-is documents (new model) go to the topic;
  the Parquet output keeps the as-was columns and adds ``asis_*`` columns, so
  model versions are compared on the same history.
* **Timestamps**: records sent to Kafka are stamped with the send time by
  default: stamping them with 2025 event times would let a topic's
  ``retention.ms`` delete them at once. ``keep_timestamps=True`` keeps event
  times (for topics with time-based retention disabled).

>>> slept = []
>>> p = Pacer(60.0, clock=iter([0.0, 0.5]).__next__, sleep=slept.append)
>>> p.wait(0); p.wait(60_000)   # an event minute at 60x is a wall second; 0.5 s have passed
>>> slept
[0.5]
>>> parse_speed("60x"), parse_speed("max")
(60.0, None)
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from stream.contracts.schemas import RawDocument, ScoredDocument, encode, message_key
from stream.files import durable_replace
from stream.history.schema import SCORED_SCHEMA, schema_for, to_row

if TYPE_CHECKING:
    from kafka import KafkaProducer

    from models.documents import DocumentScorer

__all__ = [
    "ASIS_FIELDS",
    "Pacer",
    "ParquetSink",
    "ReorderBuffer",
    "ReplayItem",
    "ReplayStats",
    "Rescorer",
    "TopicSink",
    "parse_speed",
    "replay",
]

logger = logging.getLogger(__name__)

#: Columns added to the Parquet output when rescoring: the new model's view.
ASIS_FIELDS: tuple[pa.Field, ...] = (
    pa.field("asis_topic", pa.string()),
    pa.field("asis_sentiment", pa.string()),
    pa.field("asis_sentiment_score", pa.float64()),
    pa.field("asis_p_negative", pa.float64()),
    pa.field("asis_p_neutral", pa.float64()),
    pa.field("asis_p_positive", pa.float64()),
    pa.field("asis_model_name", pa.string()),
    pa.field("asis_model_version", pa.string()),
)


def parse_speed(text: str) -> float | None:
    """``"60x"`` or ``"60"`` -> 60.0; ``"max"`` -> None (as fast as possible)."""
    value = text.strip().lower()
    if value == "max":
        return None
    try:
        speed = float(value.removesuffix("x"))
    except ValueError as exc:
        raise ValueError(f"speed {text!r} is not e.g. 1x, 60x or max") from exc
    if speed <= 0:
        raise ValueError(f"speed {text!r} must be positive")
    return speed


class Pacer:
    """Sleep so events leave ``speed`` times faster than they happened (``None``: no pacing)."""

    def __init__(
        self,
        speed: float | None,
        *,
        max_gap_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.speed = speed
        self.max_gap_s = max_gap_s
        self._clock = clock
        self._sleep = sleep
        self._anchor: tuple[int, float] | None = None  # (event ms, wall s)

    def wait(self, event_ms: int) -> None:
        """Block until the event at ``event_ms`` is due."""
        if self.speed is None:
            return
        now = self._clock()
        if self._anchor is None:
            self._anchor = (event_ms, now)
            return
        event0, wall0 = self._anchor
        due = wall0 + max(0, event_ms - event0) / 1000.0 / self.speed
        if self.max_gap_s is not None and due - now > self.max_gap_s:
            # Shift the anchor so the long gap counts as max_gap_s.
            self._anchor = (event0, wall0 - (due - now - self.max_gap_s))
            due = now + self.max_gap_s
        if due > now:
            self._sleep(due - now)


@dataclass(order=True)
class ReplayItem:
    """A document on its way out, ordered by event time, then arrival."""

    event_ms: int
    seq: int
    doc: RawDocument = field(compare=False)
    key: bytes | None = field(compare=False, default=None)


class ReorderBuffer:
    """Emit items in event-time order, holding at most ``window`` of them.

    An item more than ``window`` items late leaves late (counted in ``late``):

    >>> buf = ReorderBuffer(2)
    >>> out = [i.event_ms for x in (3, 1, 2, 0) for i in buf.push(x, None)]
    >>> out + [i.event_ms for i in buf.drain()], buf.late
    ([1, 0, 2, 3], 1)
    """

    def __init__(self, window: int) -> None:
        self.window = max(1, window)
        self._heap: list[ReplayItem] = []
        self._seq = 0
        self.late = 0  # items older than one already emitted
        self._last: int | None = None

    def push(self, event_ms: int, doc: Any, key: bytes | None = None) -> list[ReplayItem]:
        """Add one item; return those that must leave to respect the window."""
        heapq.heappush(self._heap, ReplayItem(event_ms, self._seq, doc, key))
        self._seq += 1
        out = []
        while len(self._heap) > self.window:
            out.append(self._pop())
        return out

    def _pop(self) -> ReplayItem:
        item = heapq.heappop(self._heap)
        if self._last is not None and item.event_ms < self._last:
            self.late += 1
        self._last = item.event_ms if self._last is None else max(self._last, item.event_ms)
        return item

    def drain(self) -> list[ReplayItem]:
        """Everything left, in order."""
        return [self._pop() for _ in range(len(self._heap))]


class Rescorer:
    """Rescore documents with the live scorer's :class:`~models.documents.DocumentScorer`."""

    def __init__(self, scorer: DocumentScorer) -> None:
        self.scorer = scorer
        self.failed = 0

    @classmethod
    def load(cls, model_dir: Path, *, clock: Callable[[], datetime] | None = None) -> Rescorer:
        """Load ``model_dir`` (ONNX Runtime, CPU or GPU) into a document scorer."""
        from models.documents import DocumentScorer
        from models.scoring import Classifier

        classifier = Classifier.load(model_dir)
        return cls(DocumentScorer(classifier, clock=clock or (lambda: datetime.now(UTC))))

    def rescore(self, docs: list[RawDocument]) -> list[ScoredDocument | None]:
        """The as-is scored document of each input, ``None`` where scoring failed."""
        out = [None if isinstance(r, Exception) else r for r in self.scorer.score_documents(docs)]
        self.failed += sum(1 for o in out if o is None)
        return out


class TopicSink:
    """Send documents to a Kafka topic, keyed like the live pipeline (:func:`message_key`)."""

    def __init__(self, producer: KafkaProducer, topic: str, *, keep_timestamps: bool = False):
        self.producer = producer
        self.topic = topic
        self.keep_timestamps = keep_timestamps
        self.sent = 0

    def write(self, item: ReplayItem, doc: RawDocument) -> None:
        """Send one document (the as-is one when rescoring)."""
        stamp = item.event_ms if self.keep_timestamps else None
        self.producer.send(self.topic, value=encode(doc), key=message_key(doc), timestamp_ms=stamp)
        self.sent += 1

    def close(self) -> None:
        """Wait until every record is acknowledged."""
        self.producer.flush()


class ParquetSink:
    """Write replayed rows (archive columns, plus ``asis_*`` when rescoring) atomically."""

    def __init__(self, path: Path, *, scored: bool, rescored: bool, row_group_rows: int = 10_000):
        base = SCORED_SCHEMA if scored else schema_for("raw")
        self.schema = pa.schema([*base, *ASIS_FIELDS]) if rescored else base
        self.path = Path(path)
        self.rescored = rescored
        self.row_group_rows = row_group_rows
        self.rows = 0
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self._tmp, self.schema, compression="zstd")
        self._buffer: list[dict[str, Any]] = []

    def write(self, was: RawDocument, asis: ScoredDocument | None) -> None:
        """Add one row: the as-was document and, when rescoring, the as-is scores."""
        row = to_row(was)
        if self.rescored:
            row.update(_asis_columns(asis))
        self._buffer.append({f.name: row.get(f.name) for f in self.schema})
        self.rows += 1
        if len(self._buffer) >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=self.schema))
            self._buffer.clear()

    def close(self) -> None:
        """Write the footer and move the file to its final name."""
        self._flush()
        self._writer.close()
        durable_replace(self._tmp, self.path)  # with the directory fsync it used to lack


def _asis_columns(doc: ScoredDocument | None) -> dict[str, Any]:
    if doc is None:
        return {f.name: None for f in ASIS_FIELDS}
    probs = doc.sentiment_probs
    return {
        "asis_topic": doc.topic,
        "asis_sentiment": doc.sentiment,
        "asis_sentiment_score": doc.sentiment_score,
        "asis_p_negative": probs.get("negative"),
        "asis_p_neutral": probs.get("neutral"),
        "asis_p_positive": probs.get("positive"),
        "asis_model_name": doc.model_name,
        "asis_model_version": doc.model_version,
    }


@dataclass
class ReplayStats:
    """What a replay did."""

    read: int = 0
    sent: int = 0
    written: int = 0
    rescored: int = 0
    rescore_failed: int = 0
    first_event_ms: int | None = None
    last_event_ms: int | None = None


def _batches(items: Iterable[ReplayItem], size: int) -> Iterator[list[ReplayItem]]:
    batch: list[ReplayItem] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def replay(
    items: Iterable[ReplayItem],
    *,
    pacer: Pacer,
    topic_sink: TopicSink | None = None,
    parquet_sink: ParquetSink | None = None,
    rescorer: Rescorer | None = None,
    rescore_batch: int = 64,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] = lambda n: None,
) -> ReplayStats:
    """Pace ``items`` (already in event order) into the sinks; returns the counts.

    Rescoring works in micro-batches of ``rescore_batch``; pacing applies to each
    document as it leaves, so the scaled gaps hold within and across batches.
    """
    stats = ReplayStats()
    size = rescore_batch if rescorer is not None else 256
    for batch in _batches(items, size):
        asis: list[ScoredDocument | None] = [None] * len(batch)
        if rescorer is not None:
            asis = rescorer.rescore([i.doc for i in batch])
        for item, new in zip(batch, asis, strict=True):
            _emit(item, new, pacer, topic_sink, parquet_sink, stats, rescorer is not None)
        progress(len(batch))
        if should_stop():
            logger.info("replay stopped after %d documents", stats.read)
            break
    if rescorer is not None:
        stats.rescore_failed = rescorer.failed
    return stats


def _emit(
    item: ReplayItem,
    new: ScoredDocument | None,
    pacer: Pacer,
    topic_sink: TopicSink | None,
    parquet_sink: ParquetSink | None,
    stats: ReplayStats,
    rescoring: bool,
) -> None:
    stats.read += 1
    stats.first_event_ms = (
        stats.first_event_ms if stats.first_event_ms is not None else item.event_ms
    )
    stats.last_event_ms = item.event_ms
    stats.rescored += int(new is not None)
    pacer.wait(item.event_ms)
    if topic_sink is not None and (new is not None or not rescoring):
        topic_sink.write(item, new if new is not None else item.doc)
        stats.sent += 1
    if parquet_sink is not None:
        parquet_sink.write(item.doc, new)
        stats.written += 1
