"""Event-time aggregation of scored documents into tumbling buckets per series.

:class:`Aggregator` is pure (no Kafka, no clock): feed it documents with
:meth:`Aggregator.add` and move event time with :meth:`Aggregator.advance`;
it returns every bucket that became final, in order, empty ones included, so
detectors see a gap-free sequence. A bucket is final once the watermark
(latest ``published_at`` seen minus the allowed lateness, or a forced
watermark) passes its end; a document for a final bucket is *late*: counted,
reported, never silently dropped and never added. Documents are de-duplicated
by id for ``dedup_retention_s`` of event time, so a rescored replay does not
double-count.

Per bucket and series it keeps the columns of :data:`COLUMNS` and the top
negative documents by confidence (the evidence of an alert).

>>> from datetime import datetime, timezone
>>> from alerts.testing import scored
>>> agg = Aggregator(bucket_s=60, allowed_lateness_s=60)
>>> t0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
>>> agg.add(scored("a", t0, sentiment="negative")), agg.add(scored("a", t0))
('accepted', 'duplicate')
>>> [b.start_s for b in agg.advance_to(int(t0.timestamp()) + 120)]
[1767603600, 1767603660]
>>> agg.add(scored("b", t0))
'late'
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from alerts.series import ALL_KEY, SeriesIndex, series_of
from stream.contracts.schemas import AlertEvidence, ScoredDocument

__all__ = ["COLUMNS", "Aggregator", "FinalBucket", "Outcome", "evidence_of"]

#: Columns of a bucket's statistics, per series.
COLUMNS: Final = ("total", "negative", "neutral", "positive", "confidence", "weighted_score")
TOTAL, NEG, NEU, POS, CONF, WSCORE = range(6)
_SENT_COL: Final = {"negative": NEG, "neutral": NEU, "positive": POS}

#: ``unsupported``: on time and new, but the model could not read it (another language,
#: no text; :attr:`ScoredDocument.unsupported_reason`): it moves event time and is
#: de-duplicated like any document, and is left out of every series' counts.
Outcome = Literal["accepted", "duplicate", "late", "future", "unsupported"]


def evidence_of(doc: ScoredDocument) -> AlertEvidence:
    """The evidence record of ``doc`` (what an alert shows about it)."""
    return AlertEvidence(
        id=doc.id,
        title=doc.title[:300] or doc.body[:300],
        url=doc.url,
        source=doc.source,
        published_at=doc.published_at,
        sentiment=doc.sentiment,
        sentiment_score=doc.sentiment_score,
        confidence=doc.confidence,
        copies=doc.copies,
        outlets=[doc.source],
    )


@dataclass
class _Open:
    """A bucket still accepting documents: sparse rows and top negative documents."""

    rows: dict[int, NDArray[np.float64]] = field(default_factory=dict)
    top: dict[int, list[tuple[float, str, AlertEvidence]]] = field(default_factory=dict)


@dataclass(frozen=True)
class FinalBucket:
    """A closed bucket: ``stats[row, column]`` for every series known so far."""

    start_s: int
    end_s: int
    stats: NDArray[np.float64]
    top: dict[int, list[AlertEvidence]]
    all_row: int


class Aggregator:
    """Tumbling event-time buckets per series, with lateness and de-duplication."""

    def __init__(
        self,
        *,
        bucket_s: int = 60,
        allowed_lateness_s: int = 120,
        dedup_retention_s: int = 86_400,
        top_k: int = 5,
        index: SeriesIndex | None = None,
        max_series: int = 100_000,
    ) -> None:
        self.bucket_s = bucket_s
        self.allowed_lateness_s = allowed_lateness_s
        self.dedup_retention_s = dedup_retention_s
        self.top_k = top_k
        #: Memory bound: past it, new series are not tracked (their documents still count
        #: in every series already known, e.g. ``all`` and their topic); see ``dropped``.
        self.max_series = max_series
        self.dropped_series = 0
        self.index = index if index is not None else SeriesIndex()
        self.index.row(ALL_KEY)
        self.max_event_s: int | None = None
        #: Latest event time per source (Kafka partition): the watermark follows the slowest.
        self.source_max_s: dict[str, int | None] = {}
        self.forced_watermark_s: int | None = None
        #: Start of the oldest bucket not yet final (before any bucket closed: the oldest seen).
        self.next_final_s: int | None = None
        self.closed_any = False
        self._open: dict[int, _Open] = {}
        self._seen: dict[str, int] = {}  # document id -> bucket start
        self._seen_by_bucket: dict[int, set[str]] = {}
        self.new_ids: list[tuple[str, int]] = []  # added since the last checkpoint

    @property
    def watermark_s(self) -> int | None:
        """Event time up to which every bucket is final (None before any document)."""
        marks = [m for m in (self.forced_watermark_s,) if m is not None]
        if self.source_max_s:
            known = [m for m in self.source_max_s.values() if m is not None]
            if len(known) == len(self.source_max_s):  # every source has spoken
                marks.append(min(known) - self.allowed_lateness_s)
        elif self.max_event_s is not None:
            marks.append(self.max_event_s - self.allowed_lateness_s)
        return max(marks) if marks else None

    def expect_source(self, source: str) -> None:
        """Hold the watermark until ``source`` delivers (or is retired as idle)."""
        self.source_max_s.setdefault(source, None)

    def retire_source(self, source: str) -> None:
        """Stop waiting for an idle source (it rejoins with its next document)."""
        self.source_max_s.pop(source, None)

    def bucket_of(self, ts_s: float) -> int:
        """Start of the bucket holding event time ``ts_s``."""
        return int(ts_s // self.bucket_s) * self.bucket_s

    def add(self, doc: ScoredDocument, source: str | None = None) -> Outcome:
        """Count ``doc`` in its bucket; say whether it was accepted, a duplicate or late.

        ``source`` names the ordered input it came from (a Kafka partition): with
        several sources the watermark is the slowest source's latest event time
        minus the lateness, so one partition read ahead of another never makes the
        other's documents late.
        """
        ts = doc.published_at.timestamp()
        start = self.bucket_of(ts)
        if doc.id in self._seen:
            return "duplicate"
        wm = self.watermark_s
        final = self.closed_any and self.next_final_s is not None and start < self.next_final_s
        if final or (wm is not None and start + self.bucket_s <= wm):
            return "late"
        self._remember(doc.id, start)
        self.max_event_s = max(self.max_event_s or int(ts), int(ts))
        if source is not None:
            self.source_max_s[source] = max(self.source_max_s.get(source) or int(ts), int(ts))
        if self.next_final_s is None or (not self.closed_any and start < self.next_final_s):
            self.next_final_s = start  # out of order before anything closed: not late
        if not doc.supported:
            return "unsupported"
        bucket = self._open.setdefault(start, _Open())
        for key in series_of(doc):
            row = self.index.find(key)
            if row is None:
                if len(self.index) >= self.max_series:
                    self.dropped_series += 1
                    continue
                row = self.index.row(key)
            self._count(bucket, row, doc)
        return "accepted"

    def _count(self, bucket: _Open, row: int, doc: ScoredDocument) -> None:
        stats = bucket.rows.get(row)
        if stats is None:
            stats = bucket.rows[row] = np.zeros(len(COLUMNS))
        conf = doc.confidence
        stats[TOTAL] += 1
        stats[_SENT_COL[doc.sentiment]] += 1
        stats[CONF] += conf
        stats[WSCORE] += conf * doc.sentiment_score
        if doc.sentiment == "negative":
            heap = bucket.top.setdefault(row, [])
            item = (conf, doc.id, evidence_of(doc))
            if len(heap) < self.top_k:
                heapq.heappush(heap, item)
            elif item[:2] > heap[0][:2]:
                heapq.heapreplace(heap, item)

    def _remember(self, doc_id: str, start: int) -> None:
        self._seen[doc_id] = start
        self._seen_by_bucket.setdefault(start, set()).add(doc_id)
        self.new_ids.append((doc_id, start))

    def advance_to(self, watermark_s: int | None = None) -> list[FinalBucket]:
        """Force the watermark to at least ``watermark_s`` and close what became final."""
        if watermark_s is not None:
            self.forced_watermark_s = max(self.forced_watermark_s or watermark_s, watermark_s)
        return self.advance()

    def advance(self) -> list[FinalBucket]:
        """Close every bucket whose end the watermark has passed, oldest first."""
        wm = self.watermark_s
        out: list[FinalBucket] = []
        while (
            wm is not None
            and self.next_final_s is not None
            and self.next_final_s + self.bucket_s <= wm
        ):
            out.append(self._close(self.next_final_s))
            self.next_final_s += self.bucket_s
            self.closed_any = True
        if out:
            self._evict(out[-1].end_s - self.dedup_retention_s)
        return out

    def flush(self) -> list[FinalBucket]:
        """End of a finite input: close every bucket that holds documents."""
        if not self._open:
            return []
        return self.advance_to(max(self._open) + self.bucket_s)

    def _close(self, start: int) -> FinalBucket:
        bucket = self._open.pop(start, _Open())
        stats = np.zeros((len(self.index), len(COLUMNS)))
        if bucket.rows:
            rows = np.fromiter(bucket.rows, dtype=np.int64)
            stats[rows] = np.stack(list(bucket.rows.values()))
        top = {
            row: [e for _, _, e in sorted(heap, key=lambda i: i[:2], reverse=True)]
            for row, heap in bucket.top.items()
        }
        return FinalBucket(start, start + self.bucket_s, stats, top, self.index.row(ALL_KEY))

    def _evict(self, before_s: int) -> None:
        for start in [s for s in self._seen_by_bucket if s < before_s]:
            for doc_id in self._seen_by_bucket.pop(start):
                self._seen.pop(doc_id, None)

    @property
    def open_buckets(self) -> int:
        """Buckets still accepting documents."""
        return len(self._open)

    def state(self) -> dict[str, Any]:
        """JSON-able state without the de-duplication ids (they are stored incrementally)."""
        return {
            "max_event_s": self.max_event_s,
            "source_max_s": self.source_max_s,
            "forced_watermark_s": self.forced_watermark_s,
            "next_final_s": self.next_final_s,
            "closed_any": self.closed_any,
            "open": {
                str(start): {
                    "rows": {str(r): v.tolist() for r, v in b.rows.items()},
                    "top": {
                        str(r): [[c, i, e.model_dump(mode="json")] for c, i, e in heap]
                        for r, heap in b.top.items()
                    },
                }
                for start, b in self._open.items()
            },
        }

    def load(self, state: dict[str, Any], seen: list[tuple[str, int]]) -> None:
        """Restore from :meth:`state` and the stored ``(id, bucket start)`` pairs."""
        self.max_event_s = state["max_event_s"]
        self.source_max_s = dict(state["source_max_s"])
        self.forced_watermark_s = state["forced_watermark_s"]
        self.next_final_s = state["next_final_s"]
        self.closed_any = state["closed_any"]
        self._open = {}
        for start, b in state["open"].items():
            bucket = self._open[int(start)] = _Open()
            bucket.rows = {int(r): np.asarray(v, dtype=np.float64) for r, v in b["rows"].items()}
            bucket.top = {
                int(r): [(c, i, AlertEvidence.model_validate(e)) for c, i, e in heap]
                for r, heap in b["top"].items()
            }
        self._seen, self._seen_by_bucket = {}, {}
        for doc_id, start in seen:
            self._seen[doc_id] = start
            self._seen_by_bucket.setdefault(start, set()).add(doc_id)
        self.new_ids = []
