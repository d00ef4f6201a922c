"""Story breadth: how many outlets carried each story, per document, ticker and topic.

The crawlers send a :class:`~stream.contracts.schemas.StoryBreadth` to
``topics.breadth`` when later copies of an already produced story arrive.
:class:`BreadthBook` joins those updates with the scored documents by
document id (in either order):

* per document it keeps the **largest** ``copies`` seen and the **union** of
  outlets, so a replayed or re-sent update counts nothing twice;
* :meth:`BreadthBook.series` counts breadth per ticker and per topic (stories,
  copies, stories carried by more than one outlet) from those per-document
  figures, so it is idempotent too;
* :meth:`BreadthBook.enrich` fills an alert's evidence with the copies and
  outlets of each headline.

:class:`BreadthFeed` reads the breadth topic in a thread of its own (every
partition, from the beginning at each start: the book is rebuilt from the
topic, and replaying it is harmless by construction). A broker error does not
end it: it reconnects with a growing pause and reads the topic again, and
``finsentinel_alerts_breadth_feed_up`` says whether it is reading.

>>> from datetime import datetime, timezone
>>> from alerts.testing import scored
>>> t = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
>>> book = BreadthBook()
>>> book.observe(scored("d1", t, topic="Earnings", tickers=["ACME"]))
>>> update = StoryBreadth(document_id="d1", copies=3, outlets=["wire", "a", "b"], updated_at=t)
>>> book.update(update), book.update(update)  # the replay changes nothing
('widened', 'replayed')
>>> book.series("ticker")["ACME"]
SeriesBreadth(stories=1, copies=3, spread=1)
>>> book.story("d1")
(3, ['wire', 'a', 'b'])
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge

from stream.contracts.errors import BrokerError, SchemaError
from stream.contracts.schemas import Alert, ScoredDocument, StoryBreadth, decode
from stream.kafka import KafkaSettings, make_consumer
from stream.runtime import StopFlag

__all__ = ["BreadthBook", "BreadthFeed", "SeriesBreadth"]

logger = logging.getLogger(__name__)

Outcome = Literal["widened", "replayed", "invalid"]
OUTCOMES: Final = ("widened", "replayed", "invalid")
#: Most outlets kept per story (the schema's own limit).
_MAX_OUTLETS: Final = 256


@dataclass
class _Story:
    copies: int = 1
    outlets: list[str] = field(default_factory=list)
    #: ``(kind, value)`` series of the scored document (None until it was seen).
    series: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class SeriesBreadth:
    """Breadth of one ticker or topic over the stories the book holds."""

    #: Stories (scored documents) in the series.
    stories: int
    #: Copies of those stories across outlets, first copies included.
    copies: int
    #: Stories carried by more than one outlet.
    spread: int


class BreadthBook:
    """Per-document breadth joined with scored documents; thread-safe.

    ``max_documents`` bounds memory: the oldest stories are forgotten first.
    """

    def __init__(
        self, *, max_documents: int = 200_000, registry: CollectorRegistry | None = None
    ) -> None:
        self.max_documents = max_documents
        self._stories: OrderedDict[str, _Story] = OrderedDict()
        self._lock = threading.Lock()
        self.updates = Counter(
            "finsentinel_alerts_breadth_updates_total",
            "Story breadth updates read, by outcome (widened: more copies or outlets; "
            "replayed: nothing new; invalid: dead-lettered)",
            ["outcome"],
            registry=registry if registry is not None else CollectorRegistry(),
        )
        for outcome in OUTCOMES:
            self.updates.labels(outcome)

    def observe(self, doc: ScoredDocument) -> None:
        """Remember which series ``doc`` counts in, and its own copies and outlet."""
        keys = (("topic", doc.topic), *(("ticker", t) for t in dict.fromkeys(doc.tickers)))
        with self._lock:
            story = self._story(doc.id)
            story.series = keys
            story.copies = max(story.copies, doc.copies)
            _merge(story.outlets, [doc.source])

    def update(self, update: StoryBreadth) -> Outcome:
        """Apply a crawler's update; ``replayed`` when it told nothing new."""
        with self._lock:
            story = self._story(update.document_id)
            before = (story.copies, len(story.outlets))
            story.copies = max(story.copies, update.copies)
            _merge(story.outlets, update.outlets)
            after = (story.copies, len(story.outlets))
        outcome: Outcome = "replayed" if after == before else "widened"
        self.updates.labels(outcome).inc()
        return outcome

    def story(self, doc_id: str) -> tuple[int, list[str]] | None:
        """``(copies, outlets)`` of a document, or None when nothing is known of it."""
        with self._lock:
            story = self._stories.get(doc_id)
            return None if story is None else (story.copies, list(story.outlets))

    def series(self, kind: str) -> dict[str, SeriesBreadth]:
        """Breadth per series of ``kind`` (``ticker`` or ``topic``)."""
        totals: dict[str, list[int]] = {}
        with self._lock:
            for story in self._stories.values():
                for k, value in story.series or ():
                    if k == kind:
                        t = totals.setdefault(value, [0, 0, 0])
                        t[0] += 1
                        t[1] += story.copies
                        t[2] += len(story.outlets) > 1
        return {v: SeriesBreadth(*t) for v, t in totals.items()}

    def enrich(self, alert: Alert) -> Alert:
        """``alert`` with each evidence headline's copies and outlets filled in."""
        evidence = []
        for ev in alert.evidence:
            known = self.story(ev.id)
            if known is None:
                evidence.append(ev)
                continue
            copies, outlets = known
            evidence.append(
                ev.model_copy(update={"copies": max(copies, ev.copies), "outlets": outlets})
            )
        return alert.model_copy(update={"evidence": evidence})

    def _story(self, doc_id: str) -> _Story:
        story = self._stories.get(doc_id)
        if story is None:
            story = self._stories[doc_id] = _Story()
            while len(self._stories) > self.max_documents:
                self._stories.popitem(last=False)
        return story


def _merge(outlets: list[str], more: list[str]) -> None:
    for outlet in more:
        if outlet not in outlets and len(outlets) < _MAX_OUTLETS:
            outlets.append(outlet)


class BreadthFeed:
    """Reads the breadth topic into a :class:`BreadthBook` in a daemon thread.

    Every partition from the beginning (manual assignment, no group), so a
    restarted service rebuilds the book from the topic. A record that is not a
    valid :class:`StoryBreadth` goes to ``dead_letter`` and is counted. A broker
    error (or a dead letter that was never acknowledged) closes the consumer;
    the feed waits ``retry_s`` (doubling up to ``max_retry_s`` while the errors
    go on) and reads the topic again from the beginning, which the book takes
    without counting anything twice.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        book: BreadthBook,
        *,
        dead_letter: Callable[[TopicPartition, Any, SchemaError], None] | None = None,
        poll_timeout_s: float = 0.5,
        retry_s: float = 1.0,
        max_retry_s: float = 30.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.book = book
        self.dead_letter = dead_letter
        self.poll_timeout_s = poll_timeout_s
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self.read = 0  # records read (valid or not), for tests and /healthz
        registry = registry if registry is not None else CollectorRegistry()
        self.up = Gauge(
            "finsentinel_alerts_breadth_feed_up",
            "1 while the breadth feed reads its topic; 0 before it has the topic's "
            "partitions and while it waits to reconnect after a broker error",
            registry=registry,
        )
        self.errors = Counter(
            "finsentinel_alerts_breadth_feed_errors_total",
            "Broker errors that interrupted the breadth feed (it reconnects and "
            "reads the topic again from the beginning)",
            registry=registry,
        )
        self._stop = StopFlag()
        self._thread: threading.Thread | None = None

    def start(self) -> BreadthFeed:
        """Start reading; returns self."""
        self._thread = threading.Thread(target=self._run, name="breadth-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop reading and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        delay = self.retry_s
        while not self._stop.is_set():
            if self._read_until_error():
                delay = self.retry_s  # it was reading: the next error starts the pauses afresh
            if self._stop.is_set():
                return
            self.errors.inc()
            logger.warning("breadth feed on %s: reconnecting in %.1f s", self.topic, delay)
            self._stop.wait(delay)
            delay = min(delay * 2, self.max_retry_s)

    def _read_until_error(self) -> bool:
        """Read until stopped or a broker error; True if the topic was being read."""
        reading = False
        try:
            consumer = make_consumer(self.kafka, group_id=None)
        except BrokerError:  # the feed is an enrichment: alerting goes on without it
            logger.exception("breadth feed: no consumer for %s; breadth stays as it is", self.topic)
            return reading
        try:
            self._assign(consumer)
            reading = not self._stop.is_set()
            self.up.set(1 if reading else 0)
            while not self._stop.is_set():
                batch = consumer.poll(timeout_ms=int(self.poll_timeout_s * 1000))
                for tp, records in batch.items():
                    for record in records:
                        self._apply(tp, record)
        except (KafkaError, BrokerError):  # BrokerError: a dead letter was never acknowledged
            logger.exception("breadth feed on %s interrupted; breadth stays as it is", self.topic)
        finally:
            self.up.set(0)
            consumer.close()
        return reading

    def _assign(self, consumer: KafkaConsumer) -> None:
        partitions: set[int] = set()
        while not partitions and not self._stop.is_set():
            partitions = consumer.partitions_for_topic(self.topic) or set()
            if not partitions:
                self._stop.wait(1.0)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)

    def _apply(self, tp: TopicPartition, record: Any) -> None:
        self.read += 1
        try:
            update = decode(record.value or b"", StoryBreadth)
        except SchemaError as exc:
            self.book.updates.labels("invalid").inc()
            if self.dead_letter is not None:
                self.dead_letter(tp, record, exc)
            return
        self.book.update(update)
