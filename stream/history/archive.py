"""The archive sink: raw and scored topics into hive-partitioned Parquet files.

Layout under ``root_dir`` (see :mod:`stream.history.schema` for the columns)::

    raw/date=2026-01-05/topic=finsentinel.raw.news/part-20260105T143000Z-1a2b3c4d5e6f.parquet
    scored/date=2026-01-05/topic=finsentinel.scored/part-...parquet

``date`` is the UTC event date of ``published_at``. Files are written as
``*.parquet.tmp`` and renamed once complete and fsynced (see
:mod:`stream.history.writer`); they rotate by size and by age.

Offsets are committed only up to the lowest offset still held by a file that
is not closed and fsynced, so a crash loses nothing: records in unfinished
files are consumed again. A file that cannot be written or closed (a
read-only directory, a full disk) keeps its offsets out of every commit; the
sink then commits what is safe and stops with one line naming the file, and
the next run archives those records again. The guarantee is at-least-once; a
crash between closing a file and committing, or a rebalance, can archive a
record twice, and readers drop such duplicates by
``(topic, kafka_partition, kafka_offset)`` (:mod:`stream.history.query` does).

Ownership comes from the rebalance callbacks, not ``consumer.assignment()``
(kafka-python keeps revoked partitions there until the new assignment
arrives): the sink never commits a partition it may no longer own, so a
rebalance cannot make it commit on another member's behalf.

Records that fail their schema go to the dead-letter topic with
``stage="archive"``, their original cut to ``deadletter_max_original_bytes``;
a dead letter that is still not acknowledged after retries stops the sink
without committing past its record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from kafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry

from stream.contracts.deadletters import dead_letter
from stream.contracts.errors import BrokerError, FinSentinelError, SchemaError
from stream.contracts.schemas import RawDocument, ScoredDocument, decode
from stream.contracts.topics import TopicNames
from stream.deadletters import send_dead_letter
from stream.history.files import RootLock, remove_orphans
from stream.history.metrics import ArchiveMetrics
from stream.history.ownership import Ownership
from stream.history.schema import DocType, event_date, to_row
from stream.history.settings import ArchiveSettings
from stream.history.writer import TP, ClosedFile, RollingWriter
from stream.http import MetricsServer
from stream.kafka import KafkaSettings, make_consumer, make_producer
from stream.runtime import StopFlag

__all__ = ["ArchiveMetrics", "ArchiveSink"]

logger = logging.getLogger(__name__)

#: Commit errors that only mean "the group is rebalancing": not a reason to stop.
_REBALANCING = (
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)


class ArchiveSink:
    """Consume raw and scored topics into the Parquet archive.

    ``clock`` is monotonic seconds (file ages), ``wall_clock`` stamps dead
    letters. ``consumer``/``producer`` may be injected (tests); otherwise they
    are made from ``kafka``.
    """

    def __init__(
        self,
        settings: ArchiveSettings,
        *,
        kafka: KafkaSettings,
        topics: TopicNames | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        consumer: KafkaConsumer | None = None,
        producer: KafkaProducer | None = None,
        serve_metrics: bool = True,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.topics = topics or TopicNames()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = ArchiveMetrics(self.registry)
        self._clock = clock
        self._wall_clock = wall_clock
        self._consumer = consumer
        self._producer = producer
        self._serve_metrics = serve_metrics
        self._writer = RollingWriter(
            Path(settings.root_dir),
            max_file_bytes=settings.max_file_bytes,
            max_file_age_s=settings.max_file_age_s,
            row_group_rows=settings.row_group_rows,
            compression=settings.compression,
            clock=clock,
        )
        self._next: dict[TP, int] = {}
        self._committed: dict[TP, int] = {}
        #: Where revoked partitions were archived up to (all durable), until reassigned.
        self._resume: dict[TP, int] = {}
        self.consumed = 0
        self._ownership = Ownership()
        self.ready = False

    @property
    def source_topics(self) -> list[str]:
        """The topics this sink archives."""
        out = list(self.topics.raw) if self.settings.include_raw else []
        return out + ([self.topics.scored] if self.settings.include_scored else [])

    @property
    def committed(self) -> dict[TP, int]:
        """The offsets this sink has committed, per ``(topic, partition)``."""
        return dict(self._committed)

    @property
    def pending(self) -> dict[TP, int]:
        """Per ``(topic, partition)``, the lowest offset held by a file not yet closed."""
        return self._writer.pending_low_offsets()

    def run(self, stop: StopFlag) -> None:
        """Archive until ``stop`` is set; then close every file, commit and return.

        A file that cannot be written, a dead letter that cannot be sent or a broker
        failure ends the run with the error, after committing only what is durable.
        """
        root = Path(self.settings.root_dir)
        with RootLock(root) as lock:
            # Alone on the root: every *.tmp is an orphan of a crash. Otherwise another
            # sink may be writing some, so only old ones are.
            remove_orphans(
                root, older_than_s=None if lock.exclusive else self.settings.stale_tmp_age_s
            )
            self._run(root, stop)

    def _run(self, root: Path, stop: StopFlag) -> None:
        server = self._start_server()
        try:
            consumer = self._consumer or make_consumer(self.kafka, group_id=self.settings.group_id)
            producer = self._producer or make_producer(self.kafka)
        except BrokerError:
            if server is not None:
                server.stop()
            raise
        consumer.subscribe(self.source_topics, listener=self._ownership)
        self.ready = True
        logger.info("archiving %s into %s", ", ".join(self.source_topics), root)
        try:
            while not stop.is_set():
                self.step(consumer, producer)
        except BaseException:
            self.ready = False
            self._finish_safely(consumer, "shutdown")
            raise
        else:
            self.ready = False
            self._finish(consumer, "shutdown")
        finally:
            consumer.close(autocommit=False)
            producer.close()
            if server is not None:
                server.stop()

    def _start_server(self) -> MetricsServer | None:
        if not self._serve_metrics:
            return None
        return MetricsServer(
            self.registry,
            host=self.settings.metrics_host,
            port=self.settings.metrics_port,
            ready=lambda: self.ready,
            status=lambda: f"{len(self._writer)} open files",
        ).start()

    def step(self, consumer: KafkaConsumer, producer: KafkaProducer) -> None:
        """One poll: route records, rotate aged files, commit what is durable.

        Raises the first file failure (after committing what is safe) so the caller stops.
        """
        try:
            polled = consumer.poll(
                timeout_ms=int(self.settings.poll_timeout_s * 1000),
                max_records=self.settings.max_poll_records,
            )
        except KafkaError as exc:
            raise BrokerError(f"archive poll failed: {exc}") from exc
        revoked = self._ownership.take_revoked()
        if revoked:
            self._on_revoked(revoked)
        self._on_assigned(consumer, self._ownership.take_assigned())
        owned = self._ownership.owned
        closed: list[tuple[ClosedFile, str]] = []
        for records in polled.values():
            for record in records:
                if (record.topic, record.partition) not in owned:
                    continue  # revoked during this poll: its new owner reads it
                done = self._handle(record, producer)
                if done is not None:
                    closed.append((done, "size"))
                if self._writer.failures:
                    break
            if self._writer.failures:
                break
        if not self._writer.failures:
            closed += [(f, "age") for f in self._writer.close_expired()]
        self._account(closed)
        self._commit(consumer)
        if self._writer.failures:
            raise self._writer.failures[0].error

    def _handle(self, record: Any, producer: KafkaProducer) -> ClosedFile | None:
        """Archive or dead-letter ``record``; only then does it count as consumed."""
        tp = (record.topic, record.partition)
        if record.offset < self._next.get(tp, -1):
            return None  # archived before a rebalance reset the position
        self.consumed += 1
        doc_type: DocType = "scored" if record.topic == self.topics.scored else "raw"
        model = ScoredDocument if doc_type == "scored" else RawDocument
        value: bytes = record.value or b""
        done = None
        try:
            doc = decode(value, model)
        except SchemaError as exc:
            self._dead_letter(producer, record, exc)  # raises if it cannot be sent
        else:
            row = to_row(
                doc, partition=record.partition, offset=record.offset, timestamp_ms=record.timestamp
            )
            origin = (record.topic, record.partition, record.offset)
            done = self._writer.add(
                doc_type, event_date(doc), record.topic, row, len(value), origin
            )
        self._next[tp] = record.offset + 1  # held back by the writer's low offsets if unwritten
        return done

    def _dead_letter(self, producer: KafkaProducer, record: Any, exc: SchemaError) -> None:
        logger.warning(
            "archive rejects %s[%d]@%d: %s", record.topic, record.partition, record.offset, exc
        )
        letter = dead_letter(
            exc,
            stage="archive",
            failed_at=self._wall_clock(),
            record=record,
            max_original_bytes=self.settings.deadletter_max_original_bytes,
        )
        sent = send_dead_letter(producer, self.topics.deadletter, letter)
        self.metrics.deadletters.inc(sent.reason)

    def _account(self, closed: list[tuple[ClosedFile, str]]) -> None:
        root = Path(self.settings.root_dir)
        for file, reason in closed:
            doc_type = file.path.relative_to(root).parts[0]
            self.metrics.records.labels(doc_type=doc_type).inc(file.rows)
            self.metrics.bytes.labels(doc_type=doc_type).inc(file.bytes)
            self.metrics.files.labels(doc_type=doc_type, reason=reason).inc()
            self.metrics.rotation.observe(file.close_s)
        self.metrics.open_files.set(len(self._writer))

    def _commitable(self) -> dict[TP, int]:
        """Per owned partition: the next offset, held back by every file not yet durable."""
        low = self._writer.pending_low_offsets()
        owned = self._ownership.owned
        out = {}
        for tp, nxt in self._next.items():
            offset = min(low.get(tp, nxt), nxt)
            if tp in owned and offset > self._committed.get(tp, -1):
                out[tp] = offset
        return out

    def _commit(self, consumer: KafkaConsumer) -> None:
        # Dead letters are acknowledged one by one before their record counts as
        # handled (send_dead_letter), so nothing needs flushing here.
        offsets = self._commitable()
        if not offsets:
            return
        try:
            consumer.commit(
                {
                    TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                    for (t, p), o in offsets.items()
                }
            )
        except _REBALANCING as exc:
            # The group is rebalancing: the records are safe on disk; the next commit (or
            # the partition's next owner, re-archiving from the last commit) covers them.
            logger.warning("offset commit skipped during a rebalance: %s", exc)
            return
        except KafkaError as exc:
            raise BrokerError(f"archive offset commit failed: {exc}") from exc
        self._committed.update(offsets)
        self.metrics.commits.inc()
        logger.debug("committed %s", offsets)

    def _on_revoked(self, revoked: set[TP]) -> None:
        """Close every file and forget the revoked partitions until they are assigned again.

        Under the eager protocol the whole assignment is revoked; kafka-python then
        finishes the rebalance in a later ``poll()``. Offsets are not committed here:
        the group is between generations. Partitions that come back resume at
        :attr:`_resume`, where the files just closed end; the others are re-archived
        by their new owner from the last commit (readers drop the duplicates).
        """
        self._account([(f, "rebalance") for f in self._writer.close_all()])
        if self._writer.failures:
            return  # step() raises it; nothing to resume
        for tp in revoked:
            if tp in self._next:
                self._resume[tp] = self._next.pop(tp)
            self._committed.pop(tp, None)

    def _on_assigned(self, consumer: KafkaConsumer, assigned: set[TP]) -> None:
        """Resume partitions we archived before the rebalance at the end of our files."""
        if not assigned:
            return
        for tp in assigned & set(self._resume):
            self._next[tp] = self._resume[tp]
            consumer.seek(TopicPartition(*tp), self._resume[tp])
        self._resume.clear()

    def _finish(self, consumer: KafkaConsumer, reason: str) -> None:
        self._account([(f, reason) for f in self._writer.close_all()])
        self._commit(consumer)
        if self._writer.failures:
            raise self._writer.failures[0].error

    def _finish_safely(self, consumer: KafkaConsumer, reason: str) -> None:
        """:meth:`_finish` after an error: close and commit what is safe, raise nothing new."""
        try:
            self._finish(consumer, reason)
        except (FinSentinelError, KafkaError, OSError) as exc:
            logger.error("stopping: %s", exc)
