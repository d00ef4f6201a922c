"""The scheduled service in a thread, the scheduler's job options, and the CLI."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
import typer
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from ingest.cli import register
from ingest.config import parse_sources
from ingest.scheduler import build_scheduler
from ingest.service import IngestService
from ingest.settings import IngestSettings
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings
from stream.runtime import StopFlag
from tests.ingest import feeds
from tests.ingest.conftest import FixtureServer, Reply, read_topic


def test_scheduler_never_overlaps_a_source_and_coalesces_missed_runs() -> None:
    sources = parse_sources(
        {
            "sources": [
                {
                    "name": "a",
                    "kind": "reddit",
                    "subreddit": "stocks",
                    "schedule": {"interval_s": 30, "jitter_s": 3, "misfire_grace_s": 20},
                },
                {
                    "name": "b",
                    "kind": "reddit",
                    "subreddit": "investing",
                    "schedule": {"cron": "*/5 * * * mon-fri"},
                },
            ]
        }
    )
    scheduler = build_scheduler(sources.sources, lambda _name: None, max_workers=2)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"a", "b"}
    for job in jobs.values():
        assert job.max_instances == 1 and job.coalesce is True
    assert jobs["a"].misfire_grace_time == 20 and jobs["a"].trigger.jitter == 3
    assert str(jobs["b"].trigger).startswith("cron[")


@pytest.mark.integration
def test_service_crawls_on_schedule_serves_metrics_and_stops_cleanly(
    settings: IngestSettings, kafka_settings: KafkaSettings, topics: TopicNames, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sources = parse_sources(
        {
            "sources": [
                {
                    "name": "inbox",
                    "kind": "files",
                    "path": str(inbox),
                    "schedule": {"interval_s": 1, "jitter_s": 0},
                }
            ]
        }
    )
    service = IngestService(settings, sources, kafka=kafka_settings, topics=topics)
    stop = StopFlag()
    thread = threading.Thread(target=service.run, args=(stop,))
    thread.start()
    try:
        for _ in range(100):
            if service.ready and service.metrics_url:
                break
            time.sleep(0.1)
        assert service.ready
        (inbox / "late.jsonl").write_text(
            json.dumps({"id": "x1", "title": "Dropped in later"}) + "\n"
        )
        records = read_topic(kafka_settings, topics.raw_news, expect=1, timeout_s=30)
        assert len(records) == 1
        health = httpx.get(f"{service.metrics_url}/healthz")
        assert health.status_code == 200 and "1 sources" in health.text
        metrics = httpx.get(f"{service.metrics_url}/metrics").text
        assert (
            'finsentinel_ingest_documents_produced_total{kind="news",source="inbox"} 1.0' in metrics
        )
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive() and not service.ready


def cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


def test_sources_check_probes_each_source(server: FixtureServer, tmp_path: Path) -> None:
    server.route(
        "/ok.xml", Reply(200, feeds.rss([{"guid": "1", "title": "a"}, {"guid": "2", "title": "b"}]))
    )
    server.route("/bad.xml", Reply(200, feeds.MALFORMED))
    path = tmp_path / "s.yaml"
    path.write_text(
        "defaults: {allow_private_addresses: true}\nsources:\n"
        f"  - {{name: ok, kind: rss, url: '{server.url('/ok.xml')}'}}\n"
        f"  - {{name: bad, kind: rss, url: '{server.url('/bad.xml')}'}}\n"
        f"  - {{name: paused, kind: rss, url: '{server.url('/x')}', enabled: false}}\n"
    )
    result = CliRunner().invoke(
        cli(),
        ["sources", "check", "--sources", str(path)],
        env={"COLUMNS": "200", "FINSENTINEL_INGEST_PER_HOST_MIN_INTERVAL_S": "0"},
    )
    assert result.exit_code == 1, result.output
    assert "ok" in result.output and "parse_error" in result.output and "disabled" in result.output
    ok_line = next(line for line in result.output.splitlines() if "│ ok " in line)
    assert "│ 2 " in ok_line


def test_sources_check_says_which_records_are_unusable(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = '{"id": "a1", "title": "Acme beats estimates", "published_at": "2026-01-05T10:00:00Z"}'
    (inbox / "batch.jsonl").write_text(good + "\n{not json\n")
    path = tmp_path / "s.yaml"
    path.write_text(f"sources:\n  - {{name: inbox, kind: files, path: '{inbox}'}}\n")
    result = CliRunner().invoke(
        cli(), ["sources", "check", "--sources", str(path)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "1 records unusable: malformed_json" in text, result.output


def test_invalid_sources_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("sources:\n  - {name: x, kind: rss, url: 'ftp://nope'}\n")
    for args in (["sources", "check"], ["crawl"]):
        result = CliRunner().invoke(cli(), [*args, "--sources", str(path)])
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1 and "sources[0] (x).url" in result.output
        assert "Traceback" not in result.output


@pytest.mark.integration
def test_crawl_once_produces_and_prints_a_table(
    server: FixtureServer, kafka_settings: KafkaSettings, topics: TopicNames, tmp_path: Path
) -> None:
    server.route("/f.xml", Reply(200, feeds.rss([{"guid": "1", "title": "Nvidia shares jump"}])))
    path = tmp_path / "s.yaml"
    path.write_text(
        f"sources:\n  - {{name: wire, kind: rss, url: '{server.url('/f.xml')}', "
        "allow_private_addresses: true}\n"
    )
    prefix = topics.raw_news.split(".")[0]
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers or "",
        "COLUMNS": "200",
        "FINSENTINEL_INGEST_PER_HOST_MIN_INTERVAL_S": "0",
        "FINSENTINEL_INGEST_STATE_DIR": str(tmp_path / "state"),
    }
    metrics = tmp_path / "textfile" / "finsentinel_crawl.prom"
    once = ["crawl", "--sources", str(path), "--once", "wire", "--topic-prefix", prefix]
    result = CliRunner().invoke(cli(), [*once, "--metrics-file", str(metrics)], env=env)
    assert result.exit_code == 0, result.output
    assert "Nvidia shares jump" in result.output and "NVDA" in result.output
    assert len(read_topic(kafka_settings, topics.raw_news, expect=1)) == 1
    # A one-shot pass leaves its metrics for node_exporter's textfile collector.
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.read_text())
        for s in family.samples
    }
    # Every sample says which pass wrote it, so one file per source never collides.
    assert {dict(labels).get("crawl_source") for _, labels in samples} == {"wire"}
    labels = (("crawl_source", "wire"), ("kind", "news"), ("source", "wire"))
    assert samples["finsentinel_ingest_documents_produced_total", labels] == 1
    assert samples["finsentinel_ingest_last_run_failed", (("crawl_source", "wire"),)] == 0
    ended = samples["finsentinel_ingest_last_run_timestamp_seconds", (("crawl_source", "wire"),)]
    assert ended > 1.7e9
    assert [f.name for f in metrics.parent.iterdir()] == [metrics.name]  # no temporary left
    no_once = CliRunner().invoke(cli(), ["crawl", "--metrics-file", str(metrics)], env=env)
    assert no_once.exit_code == 2 and "--metrics-file is for --once" in no_once.output
    unknown = CliRunner().invoke(
        cli(), ["crawl", "--sources", str(path), "--once", "nope"], env=env
    )
    assert unknown.exit_code == 2 and "known: wire" in unknown.output
