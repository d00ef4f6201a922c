"""Story breadth end to end: one story from three outlets at different times.

Three real HTTP feeds on 127.0.0.1 carry the same story, each from a later
crawl than the one before; the crawler produces the story once and then
``StoryBreadth`` updates on the breadth topic. The scored stream (the story
scored, with its breadth update joined by document id) and the evidence of the
alert it drives show three copies from three outlets; replaying the updates
and re-crawling change nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from alerts.service import AlertService
from alerts.settings import AlertSettings
from alerts.testing import synthetic_stream
from ingest.config import SourcesFile, parse_sources
from ingest.crawler import Crawler, IngestReport
from ingest.producer import Delivery, DocumentProducer, OutgoingRecord
from ingest.service import run_once
from ingest.settings import IngestSettings
from stream.contracts.schemas import (
    Alert,
    DeadLetter,
    RawDocument,
    ScoredDocument,
    StoryBreadth,
    decode,
    encode,
    message_key,
)
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_producer
from stream.runtime import StopFlag
from tests.ingest import feeds
from tests.ingest.conftest import FixtureServer, Reply, read_topic

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
#: Inside the burst of negative ACME coverage that synthetic_stream puts mid-way.
STORY_AT = T0 + timedelta(hours=2, minutes=5)
TITLE = "Acme Corp ($ACME) cuts its revenue forecast"
OUTLETS = ("wire-a", "paper-b", "blog-c")


def _feed(server: FixtureServer, items: list[dict[str, str]]) -> None:
    body = feeds.rss(items)
    server.route("/feed.xml", Reply(200, body, {"Content-Type": "application/rss+xml"}))


def _story(outlet: str, title: str, extra: str = "") -> dict[str, str]:
    return {
        "guid": f"{outlet}-acme",
        "title": title,
        "description": feeds.WIRE_STORY + extra,
        "link": f"http://{outlet}.test/markets/acme-forecast",
        "pubDate": format_datetime(STORY_AT),
    }


def _sources(servers: list[FixtureServer]) -> SourcesFile:
    """One RSS source per outlet, named after it."""
    specs = [
        {"name": name, "kind": "rss", "url": srv.url("/feed.xml"), "allow_private_addresses": True}
        for name, srv in zip(OUTLETS, servers, strict=False)
    ]
    return parse_sources({"sources": specs})


def _crawl(
    servers: list[FixtureServer], kafka: KafkaSettings, topics: TopicNames, s: IngestSettings
) -> IngestReport:
    return run_once(_sources(servers), kafka=kafka, topics=topics, settings=s)


@pytest.fixture
def outlets() -> Iterator[list[FixtureServer]]:
    servers = [FixtureServer().start() for _ in OUTLETS]
    for srv in servers:
        srv.route("/robots.txt", Reply(200, b"User-agent: *\nAllow: /\n"))
        _feed(srv, [])
    yield servers
    for srv in servers:
        srv.stop()


def _scored(raw: RawDocument) -> ScoredDocument:
    """The story as the scorer would label it: a confident negative earnings story."""
    probs = {"negative": 0.97, "neutral": 0.02, "positive": 0.01}
    return ScoredDocument(
        **raw.model_dump(),
        topic="Earnings",
        topic_probs={"Earnings": 1.0},
        sentiment="negative",
        sentiment_probs=probs,  # type: ignore[arg-type]
        sentiment_score=-0.96,
        model_name="fixed",
        model_version="0",
        scored_at=raw.fetched_at,
    )


@contextmanager
def _running(service: AlertService) -> Iterator[None]:
    stop = StopFlag()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive()


def _wait_for(what: str, predicate: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in time: {what}")
        time.sleep(0.1)


def _send(kafka: KafkaSettings, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = make_producer(kafka)
    try:
        for topic, key, value in records:
            producer.send(topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close()


def test_story_carried_by_three_outlets_reaches_the_alert_evidence_once(
    outlets: list[FixtureServer],
    settings: IngestSettings,
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    tmp_path: Path,
    registry: CollectorRegistry,
) -> None:
    a, b, c = outlets
    # 1st crawl: only the wire has the story.
    _feed(a, [_story("wire-a", TITLE)])
    first = _crawl(outlets, kafka_settings, topics, settings)
    assert first.produced == 1 and first.breadth == [] and first.failed == {}
    # 2nd crawl: a paper picks it up (a near copy); 3rd crawl: a blog (same text).
    _feed(b, [_story("paper-b", "UPDATE 1-" + TITLE, " (Reporting by J. Doe)")])
    second = _crawl(outlets, kafka_settings, topics, settings)
    _feed(c, [_story("blog-c", TITLE)])
    third = _crawl(outlets, kafka_settings, topics, settings)
    assert second.produced == third.produced == 0
    assert [(u.copies, u.outlets) for u in second.breadth + third.breadth] == [
        (2, ["wire-a", "paper-b"]),
        (3, ["wire-a", "paper-b", "blog-c"]),
    ]
    # A re-crawl (nothing new anywhere) sends no update.
    again = _crawl(outlets, kafka_settings, topics, settings)
    assert again.produced == 0 and again.breadth == []

    (record,) = read_topic(kafka_settings, topics.raw_news, expect=1)
    raw = decode(record.value, RawDocument)
    assert raw.copies == 1 and raw.tickers == ["ACME"] and raw.source == "wire-a"
    updates = read_topic(kafka_settings, topics.breadth, expect=2)
    assert {u.key for u in updates} == {raw.id.encode()}

    # The scored stream: the story (scored) among four hours of coverage with a burst.
    story = _scored(raw)
    # The burst (in the middle of four hours) starts three minutes before the story, so
    # the story is among the headlines of the burst's onset, where the alerts fire.
    background = synthetic_stream(
        start=T0 + timedelta(minutes=2),
        docs=480,
        seed=3,
        burst_topic="Earnings",
        burst_ticker="ACME",
        burst_docs=45,
    )
    scored = sorted([*background, story], key=lambda d: d.published_at)
    joined = max(
        (decode(u.value, StoryBreadth) for u in updates if u.key == story.id.encode()),
        key=lambda u: u.copies,
    )
    assert (joined.copies, joined.outlets) == (3, list(OUTLETS))

    service = AlertService(
        AlertSettings(
            db_path=tmp_path / "alerts.sqlite",
            group_id=group_id,
            metrics_port=0,
            evaluate_interval_s=0.5,
            checkpoint_interval_s=0.5,
            poll_timeout_s=0.2,
            idle_watermark_after_s=None,
            metric_topics=("Earnings", "Markets"),
        ),
        kafka=kafka_settings,
        topics=topics,
        registry=registry,
    )
    book = service.breadth

    def updates_of(outcome: str) -> float | None:
        return registry.get_sample_value(
            "finsentinel_alerts_breadth_updates_total", {"outcome": outcome}
        )

    with _running(service):
        # Breadth first, so every evaluation (scheduled ones too) sees it.
        _wait_for("the breadth updates", lambda: book.story(story.id) == (3, list(OUTLETS)))
        _send(kafka_settings, [(topics.scored, message_key(d), encode(d)) for d in scored])
        _wait_for("all scored documents", lambda: service.stats["accepted"] == len(scored))
        service.flush()
        firing = [a for a in service.alerts() if a.state == "firing"]
        acme_before = book.series("ticker")["ACME"]
        earnings_before = book.series("topic")["Earnings"]
        # Replay: the same updates again (a crawler re-sending after a crash).
        _send(kafka_settings, [(topics.breadth, u.key, u.value) for u in updates])
        _wait_for("the replayed updates", lambda: updates_of("replayed") == 2)
        assert book.story(story.id) == (3, list(OUTLETS))
        assert book.series("ticker")["ACME"] == acme_before
        assert book.series("topic")["Earnings"] == earnings_before
        # A record that is no StoryBreadth is dead-lettered, not fatal.
        _send(kafka_settings, [(topics.breadth, b"x", b"not json")])
        _wait_for("the bad update", lambda: updates_of("invalid") == 1)

    (letter,) = [
        decode(r.value, DeadLetter) for r in read_topic(kafka_settings, topics.deadletter, expect=1)
    ]
    assert (letter.stage, letter.reason, letter.source_topic) == (
        "alerts",
        "malformed_json",
        topics.breadth,
    )

    assert {(a.series_kind, a.series) for a in firing} >= {
        ("topic", "Earnings"),
        ("ticker", "ACME"),
    }
    # Evidence is the window's most negative headlines when an alert fires; the story
    # is the most negative of the burst's first minutes, where the topic alert fires.
    carried = [a for a in firing if any(e.id == story.id for e in a.evidence)]
    assert ("topic", "Earnings") in {(a.series_kind, a.series) for a in carried}
    for alert in carried:
        (ev,) = [e for e in alert.evidence if e.id == story.id]
        assert (ev.copies, ev.outlets) == (3, list(OUTLETS))
        assert all(e.copies == 1 for e in alert.evidence if e.id != story.id)
    # One story of the ACME series spread; its three copies count once, replay or not.
    assert acme_before.spread == 1
    assert acme_before.copies == acme_before.stories + 2
    stored = {a.key: a for a in _on_alerts_topic(kafka_settings, topics)}
    assert any(e.id == story.id and e.copies == 3 for a in stored.values() for e in a.evidence)


def _on_alerts_topic(kafka: KafkaSettings, topics: TopicNames) -> list[Alert]:
    return [decode(r.value, Alert) for r in read_topic(kafka, topics.alerts, expect=1)]


class _LosesBreadthOnce(DocumentProducer):
    """The real producer, except that the first batch's breadth updates are not acknowledged."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        super().__init__(kafka, ack_timeout_s=30)
        self.topic, self.lost = topic, 0

    def deliver(self, records: Sequence[OutgoingRecord]) -> Delivery:
        if self.lost or not any(r.topic == self.topic for r in records):
            return super().deliver(records)
        self.lost = sum(r.topic == self.topic for r in records)
        delivery = super().deliver([r for r in records if r.topic != self.topic])
        delivery.failed.update({r.tag: "lost" for r in records if r.topic == self.topic})
        return delivery


def test_an_unacknowledged_update_is_resent_with_the_same_totals(
    outlets: list[FixtureServer],
    settings: IngestSettings,
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    registry: CollectorRegistry,
) -> None:
    a, b, _ = outlets
    _feed(a, [_story("wire-a", TITLE)])
    _feed(b, [_story("paper-b", TITLE)])
    sources = _sources(outlets[:2])
    producer = _LosesBreadthOnce(kafka_settings, topics.breadth)
    crawler = Crawler(
        settings,
        sources.sources,
        kafka=kafka_settings,
        topics=topics,
        producer=producer,
        registry=registry,
    )
    try:
        # One batch folds both copies: the document waits for its breadth update too.
        lost = crawler.drain(list(OUTLETS[:2]))
        assert producer.lost == 1 and lost.produced == 0
        assert set(lost.failed) == set(OUTLETS[:2])
        retried = crawler.drain(list(OUTLETS[:2]))
        copies = crawler.dedup.copies(retried.documents[0].id)
    finally:
        crawler.close()
    assert retried.produced == 1 and retried.failed == {} and copies == 2
    assert [(u.copies, u.outlets) for u in retried.breadth] == [(2, ["wire-a", "paper-b"])]
    (doc,) = retried.documents
    assert doc.copies == 2
    records = read_topic(kafka_settings, topics.breadth, expect=1)
    updates = [decode(r.value, StoryBreadth) for r in records]
    assert [(u.document_id, u.copies, u.outlets) for u in updates] == [
        (doc.id, 2, ["wire-a", "paper-b"])
    ]
    counted = registry.get_sample_value(
        "finsentinel_ingest_breadth_updates_total", {"source": "wire-a"}
    )
    assert counted == 1
