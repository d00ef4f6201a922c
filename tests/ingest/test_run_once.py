"""``run_once`` end to end: real HTTP server, real embedded broker, real topics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from ingest.config import parse_sources
from ingest.crawler import Crawler, IngestReport
from ingest.service import run_once
from ingest.settings import IngestSettings
from stream.contracts.schemas import DeadLetter, RawDocument, decode
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings
from tests.ingest import feeds
from tests.ingest.conftest import FixtureServer, Handler, Reply, read_topic

pytestmark = pytest.mark.integration

APPLE = "Apple shares rose 3% after the iPhone maker reported record services revenue."


def etag_feed(body: bytes, tag: str) -> Handler:
    def handler(_p: str, _q: object, headers: dict[str, str]) -> Reply:
        if headers.get("if-none-match") == tag:
            return Reply(304)
        return Reply(200, body, {"ETag": tag, "Content-Type": "application/rss+xml"})

    return handler


def specs(*items: dict[str, object]):  # type: ignore[no-untyped-def]
    return parse_sources({"sources": list(items)})


def docs(kafka: KafkaSettings, topic: str, expect: int) -> list[RawDocument]:
    return [decode(r.value, RawDocument) for r in read_topic(kafka, topic, expect=expect)]


def test_duplicates_across_feeds_and_files_are_produced_once_with_copies(
    server: FixtureServer,
    settings: IngestSettings,
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    tmp_path: Path,
) -> None:
    server.route(
        "/a.xml",
        etag_feed(
            feeds.rss(
                [
                    {
                        "guid": "a1",
                        "title": "Acme cuts forecast",
                        "description": feeds.WIRE_STORY,
                        "link": "http://wire.test/s1?utm_source=a",
                        "pubDate": "Mon, 05 Jan 2026 10:00:00 GMT",
                    },
                    {
                        "guid": "a2",
                        "title": "Apple rallies",
                        "description": APPLE,
                        "link": "http://a.test/apple",
                    },
                ]
            ),
            '"a-v1"',
        ),
    )
    server.route(
        "/b.xml",
        etag_feed(
            feeds.rss(
                [
                    {
                        "guid": "b1",
                        "title": "UPDATE 1-Acme cuts forecast",
                        "description": feeds.WIRE_STORY
                        + " (Reporting by J. Doe; Editing by K. Roe)",
                        "link": "http://b.test/acme",
                    },
                    {
                        "guid": "b2",
                        "title": "Apple rallies",
                        "description": APPLE,
                        "link": "http://b.test/x",
                    },
                ]
            ),
            '"b-v1"',
        ),
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "rows.jsonl").write_text(
        json.dumps(
            {"id": "c1", "title": "Acme cuts forecast", "body": "Reuters - " + feeds.WIRE_STORY}
        )
        + "\n"
        + json.dumps(
            {
                "id": "c2",
                "text": "Holding $NVDA through earnings, wish me luck",
                "kind": "comment",
                "author": "r/u",
            }
        )
        + "\n"
        + "{broken json\n",
        encoding="utf-8",
    )
    sources = specs(
        {
            "name": "wire-a",
            "kind": "rss",
            "url": server.url("/a.xml"),
            "allow_private_addresses": True,
        },
        {
            "name": "wire-b",
            "kind": "rss",
            "url": server.url("/b.xml"),
            "allow_private_addresses": True,
        },
        {"name": "inbox", "kind": "files", "path": str(inbox)},
    )
    registry = CollectorRegistry()

    report = run_once(
        sources, kafka=kafka_settings, topics=topics, registry=registry, settings=settings
    )

    assert report.produced == 3 and report.failed == {}
    assert report.duplicates == {"near": 2, "exact": 1}
    assert report.rejected == {"malformed_json": 1}
    news = {d.title: d for d in docs(kafka_settings, topics.raw_news, expect=2)}
    assert set(news) == {"Acme cuts forecast", "Apple rallies"}
    acme, apple = news["Acme cuts forecast"], news["Apple rallies"]
    assert acme.copies == 3 and apple.copies == 2
    assert acme.url == "http://wire.test/s1" and acme.published_at.isoformat().startswith(
        "2026-01-05T10"
    )
    assert apple.tickers == ["AAPL"] and apple.novelty is not None
    (comment,) = docs(kafka_settings, topics.raw_comments, expect=1)
    assert comment.kind == "comment" and comment.tickers == ["NVDA"]
    (dead,) = [
        decode(r.value, DeadLetter) for r in read_topic(kafka_settings, topics.deadletter, expect=1)
    ]
    assert (
        dead.stage == "ingest"
        and dead.reason == "malformed_json"
        and dead.original == b"{broken json"
    )
    sample = registry.get_sample_value
    assert (
        sample("finsentinel_ingest_documents_produced_total", {"source": "wire-a", "kind": "news"})
        == 2
    )
    assert (
        sample("finsentinel_ingest_duplicates_dropped_total", {"source": "wire-b", "kind": "near"})
        == 1
    )
    assert (
        sample("finsentinel_ingest_last_success_timestamp_seconds", {"source": "inbox"}) or 0
    ) > 0

    # A second run: feeds answer 304 to the stored ETags, files are unchanged.
    again = run_once(sources, kafka=kafka_settings, topics=topics, settings=settings)
    assert again.produced == 0 and again.failed == {}
    assert {s.outcome for n, s in again.sources.items() if n != "inbox"} == {"not_modified"}
    assert server.requests[-1][1].get("if-none-match") in ('"a-v1"', '"b-v1"')
    assert len(docs(kafka_settings, topics.raw_news, expect=2)) == 2


def test_broken_sources_are_reported_and_never_stop_the_good_ones(
    server: FixtureServer,
    settings: IngestSettings,
    kafka_settings: KafkaSettings,
    topics: TopicNames,
) -> None:
    server.route("/robots.txt", Reply(200, b"User-agent: *\nDisallow: /private/\n"))
    server.route("/good.xml", Reply(200, feeds.rss([{"guid": "g", "title": "Good story one"}])))
    server.route(
        "/busy.xml",
        [
            Reply(429, headers={"Retry-After": "0"}),
            Reply(200, feeds.rss([{"guid": "r", "title": "Story after a 429"}])),
        ],
    )
    server.route("/bomb.xml", Reply(200, feeds.BILLION_LAUGHS))
    server.route("/broken.xml", Reply(200, feeds.MALFORMED))
    server.route("/huge.xml", Reply(200, stream_bytes=50 * 1024 * 1024))
    server.route("/private/feed.xml", Reply(200, feeds.rss([{"guid": "p", "title": "secret"}])))
    server.route("/moved.xml", Reply(302, headers={"Location": "http://169.254.169.254/latest/"}))
    names = {
        "good": "/good.xml",
        "busy": "/busy.xml",
        "bomb": "/bomb.xml",
        "broken": "/broken.xml",
        "huge": "/huge.xml",
        "private": "/private/feed.xml",
        "moved": "/moved.xml",
    }
    sources = specs(
        *(
            {"name": n, "kind": "rss", "url": server.url(p), "allow_private_addresses": True}
            for n, p in names.items()
        )
    )
    capped = settings.model_copy(update={"max_response_bytes": 1_000_000})
    registry = CollectorRegistry()

    report = run_once(
        sources, kafka=kafka_settings, topics=topics, registry=registry, settings=capped
    )

    assert {d.title for d in report.documents} == {"Good story one", "Story after a 429"}
    outcomes = {n: r.outcome for n, r in report.sources.items()}
    assert outcomes == {
        "good": "ok",
        "busy": "ok",
        "bomb": "unsafe_xml",
        "broken": "parse_error",
        "huge": "too_large",
        "private": "robots_disallowed",
        "moved": "blocked",
    }
    assert set(report.failed) == {"bomb", "broken", "huge", "private", "moved"}
    assert server.hits["/private/feed.xml"] == 0
    assert (
        registry.get_sample_value(
            "finsentinel_ingest_fetches_total", {"source": "huge", "outcome": "too_large"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "finsentinel_ingest_source_consecutive_failures", {"source": "bomb"}
        )
        == 1
    )
    assert len(docs(kafka_settings, topics.raw_news, expect=2)) == 2


def test_items_sharing_a_home_page_link_are_not_duplicates(
    server: FixtureServer,
    settings: IngestSettings,
    kafka_settings: KafkaSettings,
    topics: TopicNames,
) -> None:
    items = [
        {"guid": f"g{i}", "title": f"Distinct headline {i}", "link": "http://site.test/"}
        for i in range(3)
    ]
    server.route("/f.xml", Reply(200, feeds.rss(items)))
    sources = specs(
        {
            "name": "lazy-feed",
            "kind": "rss",
            "url": server.url("/f.xml"),
            "allow_private_addresses": True,
        }
    )
    report = run_once(sources, kafka=kafka_settings, topics=topics, settings=settings)
    assert report.produced == 3 and not report.duplicates


def test_failing_source_is_backed_off_and_recovers(
    server: FixtureServer,
    settings: IngestSettings,
    kafka_settings: KafkaSettings,
    topics: TopicNames,
) -> None:
    server.route("/down.xml", Reply(404))
    server.route("/up.xml", Reply(200, feeds.rss([{"guid": "u", "title": "Still flowing"}])))
    sources = specs(
        {
            "name": "down",
            "kind": "rss",
            "url": server.url("/down.xml"),
            "allow_private_addresses": True,
        },
        {
            "name": "up",
            "kind": "rss",
            "url": server.url("/up.xml"),
            "allow_private_addresses": True,
        },
    )
    strict = settings.model_copy(
        update={"breaker_failure_threshold": 2, "breaker_cooldown_s": 3600.0}
    )
    registry = CollectorRegistry()
    crawler = Crawler(
        strict, sources.sources, kafka=kafka_settings, topics=topics, registry=registry
    )
    try:
        outcomes = []
        for _ in range(3):
            report = IngestReport()
            crawler.run_pass(["down", "up"], report)
            outcomes.append(report.sources["down"].outcome)
            assert report.sources["up"].error is None
        assert outcomes == ["http_error", "http_error", "backed_off"]
        assert server.hits["/down.xml"] == 2
        assert crawler.backed_off() == ["down"]
        assert (
            registry.get_sample_value("finsentinel_ingest_source_backed_off", {"source": "down"})
            == 1
        )
        crawler.breakers["down"].record_success()  # as after a successful trial pass
        assert crawler.backed_off() == []
    finally:
        crawler.close()
