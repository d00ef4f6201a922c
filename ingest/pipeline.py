"""One commit step: normalise, deduplicate, produce, then mark seen.

:meth:`Pipeline.process` takes the results of one or more source passes as one
batch, so copies of a story found by several sources in the batch are folded
into one document with ``copies`` counted. Only documents the broker
acknowledged are marked seen; a source's cursor may be saved only when its
report is ``complete`` (every record of it acknowledged).

Breadth: when copies of an already produced story arrive (or a batch folds
copies from several outlets into one document), a
:class:`~stream.contracts.schemas.StoryBreadth` with the story's total copies
and its outlets goes to ``topics.breadth``, keyed by the document id. The
copies are counted in the dedup store only once that update is acknowledged,
so a retried pass sends the same totals again (consumers keep the largest
count per document: nothing is counted twice).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from ingest.dedup import DedupStore, Seen
from ingest.documents import Built, build_document
from ingest.entities import EntityExtractor
from ingest.fingerprint import similarities
from ingest.metrics import IngestMetrics
from ingest.producer import DocumentProducer, OutgoingRecord
from ingest.sources.base import FetchResult, Rejected, Source
from stream.contracts.errors import SchemaError
from stream.contracts.schemas import (
    REJECT_REASONS,
    DeadLetter,
    RawDocument,
    StoryBreadth,
    encode,
    message_key,
)
from stream.contracts.topics import TopicNames

__all__ = ["Pipeline", "SourceReport"]

logger = logging.getLogger(__name__)


@dataclass
class SourceReport:
    """What one source's pass found and what became of it."""

    source: str
    outcome: str = "ok"
    error: str | None = None
    found: int = 0
    produced: int = 0
    duplicates: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    unacknowledged: int = 0
    documents: list[RawDocument] = field(default_factory=list)
    #: Breadth updates the broker acknowledged (stories this source's copies widened).
    breadth: list[StoryBreadth] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when the pass succeeded and the broker acknowledged everything."""
        return self.error is None and self.unacknowledged == 0


@dataclass
class _Entry:
    source: str
    built: Built


@dataclass
class _Group:
    rep: _Entry
    members: list[_Entry] = field(default_factory=list)
    novelty: float = 1.0


@dataclass
class _Batch:
    groups: list[_Group] = field(default_factory=list)
    #: (duplicate, produced id it copies) for copies of already-produced documents.
    stored_dups: list[tuple[_Entry, str]] = field(default_factory=list)


class Pipeline:
    """Shared by every source of a process; commits one batch at a time."""

    def __init__(
        self,
        *,
        topics: TopicNames,
        producer: DocumentProducer,
        dedup: DedupStore,
        entities: EntityExtractor,
        metrics: IngestMetrics,
        near_min_similarity: float,
        near_min_words: int = 20,
        clock: Callable[[], datetime],
    ) -> None:
        self._topics = topics
        self._producer = producer
        self._dedup = dedup
        self._entities = entities
        self._metrics = metrics
        self._near_min = near_min_similarity
        self._near_min_words = near_min_words
        self._clock = clock
        self._lock = threading.Lock()
        #: Records the broker did not acknowledge in the latest batch (for /healthz).
        self.last_unacknowledged = 0

    def process(
        self, batch: Sequence[tuple[Source, FetchResult]], reports: dict[str, SourceReport]
    ) -> None:
        """Commit a batch of pass results, filling in ``reports`` (one per source)."""
        with self._lock:
            fetched_at = self._clock()
            entries: list[_Entry] = []
            dead: list[tuple[str, Rejected]] = []
            for source, result in batch:
                reports[source.name].found += len(result.candidates)
                dead.extend((source.name, r) for r in result.rejected)
                for cand in result.candidates:
                    built = build_document(
                        cand,
                        source.spec,
                        self._entities,
                        fetched_at,
                        near_min_words=self._near_min_words,
                    )
                    if isinstance(built, Rejected):
                        dead.append((source.name, built))
                    else:
                        entries.append(_Entry(source.name, built))
            grouped = self._group(entries, reports)
            self._commit(grouped, dead, reports, fetched_at)

    def _group(self, entries: list[_Entry], reports: dict[str, SourceReport]) -> _Batch:
        out = _Batch()
        by_key: dict[str, int] = {}
        sigs: list[np.ndarray] = []
        for entry in entries:
            seen = entry.built.seen
            verdict = self._dedup.classify(seen)
            if verdict.kind == "known" or seen.id in by_key:
                self._count_dup(reports, entry.source, "known")
                continue
            if verdict.kind in ("exact", "near") and verdict.match_id is not None:
                out.stored_dups.append((entry, verdict.match_id))
                self._count_dup(reports, entry.source, verdict.kind)
                continue
            idx = by_key.get(seen.content_hash)
            if idx is None and seen.url:
                idx = by_key.get(seen.url)
            kind = "exact"
            best = 0.0
            if idx is None and sigs and seen.signature is not None:
                sims = similarities(np.vstack(sigs), seen.signature)
                best = float(sims.max())
                if best >= self._near_min and seen.near_eligible:
                    idx, kind = int(sims.argmax()), "near"
            if idx is not None:
                out.groups[idx].members.append(entry)
                self._count_dup(reports, entry.source, kind)
                continue
            idx = len(out.groups)
            out.groups.append(_Group(entry, novelty=round(1.0 - max(best, verdict.similarity), 4)))
            assert seen.signature is not None
            sigs.append(seen.signature)
            for key in (seen.id, seen.content_hash, seen.url):
                if key:
                    by_key.setdefault(key, idx)
        return out

    def _count_dup(self, reports: dict[str, SourceReport], source: str, kind: str) -> None:
        reports[source].duplicates[kind] += 1
        self._metrics.duplicates.labels(source=source, kind=kind).inc()

    def _commit(
        self,
        batch: _Batch,
        dead: list[tuple[str, Rejected]],
        reports: dict[str, SourceReport],
        fetched_at: datetime,
    ) -> None:
        docs: dict[int, RawDocument] = {}
        folded: dict[int, StoryBreadth] = {}
        records: list[OutgoingRecord] = []
        for i, group in enumerate(batch.groups):
            doc = group.rep.built.doc.model_copy(
                update={"copies": 1 + len(group.members), "novelty": group.novelty}
            )
            docs[i] = doc
            records.append(
                OutgoingRecord(self._topics.raw_for(doc.kind), message_key(doc), encode(doc), i)
            )
            if group.members:
                outlets = [e.built.doc.source for e in (group.rep, *group.members)]
                folded[i] = _breadth(doc.id, doc.copies, outlets, fetched_at)
                records.append(self._breadth_record(folded[i], ("breadth", i)))
        widened = self._widened(batch, fetched_at)
        for match_id, (update, _) in widened.items():
            records.append(self._breadth_record(update, ("widened", match_id)))
        for j, (source, rej) in enumerate(dead):
            letter = _dead_letter(rej, fetched_at, source)
            records.append(
                OutgoingRecord(self._topics.deadletter, source.encode(), encode(letter), ("dl", j))
            )
        delivery = self._producer.deliver(records)
        self.last_unacknowledged = len(delivery.failed)
        self._record_groups(batch, docs, folded, delivery.acked, reports)
        self._record_stored_dups(widened, delivery.acked, reports)
        for j, (source, rej) in enumerate(dead):
            if ("dl", j) in delivery.acked:
                reports[source].rejected[rej.reason] += 1
                self._metrics.rejected.labels(source=source, reason=_reason(rej.reason)).inc()
            else:
                reports[source].unacknowledged += 1
        if delivery.failed:
            logger.warning(
                "%s records not acknowledged (e.g. %s); they will be retried",
                len(delivery.failed),
                next(iter(delivery.failed.values())),
            )

    def _breadth_record(self, update: StoryBreadth, tag: object) -> OutgoingRecord:
        return OutgoingRecord(
            self._topics.breadth, update.document_id.encode(), encode(update), tag
        )

    def _widened(
        self, batch: _Batch, fetched_at: datetime
    ) -> dict[str, tuple[StoryBreadth, list[_Entry]]]:
        """Per produced story that got later copies: its new totals and those copies."""
        copies: dict[str, list[_Entry]] = {}
        ids: set[str] = set()
        for entry, match_id in batch.stored_dups:
            if entry.built.seen.id not in ids:  # the same item twice in a batch is one copy
                ids.add(entry.built.seen.id)
                copies.setdefault(match_id, []).append(entry)
        out: dict[str, tuple[StoryBreadth, list[_Entry]]] = {}
        for match_id, entries in copies.items():
            total = self._dedup.copies(match_id) + len(entries)
            outlets = self._dedup.outlets(match_id) + [e.built.doc.source for e in entries]
            out[match_id] = (_breadth(match_id, total, outlets, fetched_at), entries)
        return out

    def _record_groups(
        self,
        batch: _Batch,
        docs: dict[int, RawDocument],
        folded: dict[int, StoryBreadth],
        acked: set[object],
        reports: dict[str, SourceReport],
    ) -> None:
        seen: list[Seen] = []
        for i, group in enumerate(batch.groups):
            if i not in acked or (group.members and ("breadth", i) not in acked):
                for entry in (group.rep, *group.members):
                    reports[entry.source].unacknowledged += 1
                    self._metrics.unacknowledged.labels(source=entry.source).inc()
                continue
            doc = docs[i]
            rep = group.rep.built.seen
            seen.append(Seen(rep.id, rep.content_hash, rep.url, rep.signature, doc.copies))
            # Copies are remembered by id only, so re-crawls of them are "known".
            seen.extend(
                Seen(m.built.seen.id, m.built.seen.content_hash, m.built.seen.url, None, 0)
                for m in group.members
            )
            report = reports[group.rep.source]
            report.produced += 1
            report.documents.append(doc)
            self._metrics.produced.labels(source=group.rep.source, kind=doc.kind).inc()
            if i in folded:
                report.breadth.append(folded[i])
                self._metrics.breadth_updates.labels(source=group.rep.source).inc()
            outlets = [e.built.doc.source for e in (group.rep, *group.members)]
            self._dedup.add_outlets(doc.id, outlets)
        self._dedup.mark_seen(seen)

    def _record_stored_dups(
        self,
        widened: dict[str, tuple[StoryBreadth, list[_Entry]]],
        acked: set[object],
        reports: dict[str, SourceReport],
    ) -> None:
        done: list[_Entry] = []
        for match_id, (update, entries) in widened.items():
            if ("widened", match_id) not in acked:
                # Not marked seen: the next pass finds these copies again and resends.
                for entry in entries:
                    reports[entry.source].unacknowledged += 1
                    self._metrics.unacknowledged.labels(source=entry.source).inc()
                continue
            self._dedup.add_copies(match_id, len(entries))
            self._dedup.add_outlets(match_id, update.outlets)
            reports[entries[-1].source].breadth.append(update)
            self._metrics.breadth_updates.labels(source=entries[-1].source).inc()
            done.extend(entries)
        self._dedup.mark_seen(
            Seen(e.built.seen.id, e.built.seen.content_hash, e.built.seen.url, None, 0)
            for e in done
        )


def _breadth(doc_id: str, copies: int, outlets: list[str], updated_at: datetime) -> StoryBreadth:
    return StoryBreadth(
        document_id=doc_id,
        copies=copies,
        outlets=list(dict.fromkeys(o[:512] for o in outlets))[:256],
        updated_at=updated_at,
    )


def _reason(reason: str) -> str:
    return reason if reason in REJECT_REASONS else "processing_error"


def _dead_letter(rej: Rejected, failed_at: datetime, source: str) -> DeadLetter:
    return DeadLetter.wrap(
        rej.raw,
        SchemaError(_reason(rej.reason), f"{source}: {rej.detail}"),
        stage="ingest",
        failed_at=failed_at,
        key=source.encode(),
    )
