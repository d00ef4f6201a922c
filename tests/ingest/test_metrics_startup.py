"""Crawl counters exist at zero before the first pass (issue 18, finding 10).

The demo's crawl counter first appeared already at 457 (it was created by the
pass that produced the corpus), so ``rate()`` on the dashboard read 0: there
was no earlier sample to rise from. Metrics built at start-up and handed to
the crawler are scraped at zero first.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from finsentinel.demo_corpus import DEMO_DATA_DIR
from ingest.config import parse_sources
from ingest.metrics import IngestMetrics
from ingest.service import IngestService, run_once
from ingest.settings import IngestSettings
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings

pytestmark = pytest.mark.integration

PRODUCED = "finsentinel_ingest_documents_produced_total"


def test_counters_built_at_start_up_rise_from_zero_through_run_once(
    settings: IngestSettings, kafka_settings: KafkaSettings, topics: TopicNames, tmp_path: Path
) -> None:
    registry = CollectorRegistry()
    metrics = IngestMetrics(["backfill"], registry=registry)  # the process starts
    before = {
        kind: registry.get_sample_value(PRODUCED, {"source": "backfill", "kind": kind})
        for kind in ("news", "comment")
    }
    assert before == {"news": 0.0, "comment": 0.0}  # what the first scrape sees
    corpus = tmp_path / "corpus"
    shutil.copytree(DEMO_DATA_DIR, corpus)
    spec = {"name": "backfill", "kind": "files", "path": str(corpus)}
    report = run_once(
        parse_sources({"sources": [spec]}),
        kafka=kafka_settings,
        topics=topics,
        settings=settings,
        metrics=metrics,
    )
    after = sum(
        registry.get_sample_value(PRODUCED, {"source": "backfill", "kind": kind}) or 0.0
        for kind in ("news", "comment")
    )
    assert after == report.produced > 400


def test_the_scheduled_service_declares_its_series_when_built(
    settings: IngestSettings, kafka_settings: KafkaSettings, topics: TopicNames, tmp_path: Path
) -> None:
    registry = CollectorRegistry()
    spec = {"name": "wire", "kind": "files", "path": str(tmp_path)}
    IngestService(settings, parse_sources({"sources": [spec]}), kafka=kafka_settings,
                  topics=topics, registry=registry)  # fmt: skip
    assert registry.get_sample_value(PRODUCED, {"source": "wire", "kind": "news"}) == 0.0
