"""Crash between produce and mark-seen, and SIGKILL mid-run: nothing lost, dedup by id exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ingest.config import parse_sources
from ingest.dedup import DedupStore
from ingest.normalize import doc_id
from ingest.service import run_once
from ingest.settings import IngestSettings
from stream.contracts.schemas import RawDocument, decode
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings
from tests.ingest.conftest import FixtureServer, Reply, read_topic

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]


def write_rows(folder: Path, n: int) -> set[str]:
    folder.mkdir(parents=True, exist_ok=True)
    topics = ["rates", "oil", "chips", "banks", "autos", "retail", "pharma", "airlines"]
    lines = [
        json.dumps(
            {
                "id": f"row-{i}",
                "title": f"Story {i}: {topics[i % 8]} desk note number {i}",
                "body": f"Unique body {i} " + " ".join(f"w{i}x{j}" for j in range(12)),
            }
        )
        for i in range(n)
    ]
    (folder / "rows.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {f"row-{i}" for i in range(n)}


def produced_keys(kafka: KafkaSettings, topic: str, expect: int) -> list[str]:
    """The source's own id of every record on the topic (from the document id)."""
    records = read_topic(kafka, topic, expect=expect, timeout_s=30)
    return [decode(r.value, RawDocument).id for r in records]


class Crash(RuntimeError):
    """Stands in for the process dying right after the broker acknowledged a batch."""


def test_crash_between_produce_and_mark_seen_loses_nothing(
    settings: IngestSettings,
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_rows(tmp_path / "inbox", 12)
    sources = parse_sources(
        {"sources": [{"name": "inbox", "kind": "files", "path": str(tmp_path / "inbox")}]}
    )
    real_mark = DedupStore.mark_seen

    def crash(self: DedupStore, items: object) -> None:
        raise Crash("killed after produce, before mark-seen")

    monkeypatch.setattr(DedupStore, "mark_seen", crash)
    with pytest.raises(Crash):
        run_once(sources, kafka=kafka_settings, topics=topics, settings=settings)
    monkeypatch.setattr(DedupStore, "mark_seen", real_mark)

    # The crashed pass was acknowledged but neither marked seen nor its cursor saved.
    assert not (settings.state_dir / "cursors" / "inbox.json").exists()
    report = run_once(sources, kafka=kafka_settings, topics=topics, settings=settings)
    assert report.produced == 12 and report.failed == {}
    third = run_once(sources, kafka=kafka_settings, topics=topics, settings=settings)
    assert third.produced == 0

    ids = produced_keys(kafka_settings, topics.raw_news, expect=24)
    assert len(ids) == 24  # at-least-once: the crashed batch arrives twice ...
    assert len(set(ids)) == 12  # ... with the same ids, so downstream dedup by id is exact


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_delivers_every_story(
    server: FixtureServer, kafka_settings: KafkaSettings, topics: TopicNames, tmp_path: Path
) -> None:
    # A JSON API that hands out 10 new items per pass (since-id paging); the
    # third pass hangs until the test has killed the crawler: a deterministic
    # "killed mid-run". After the restart it answers normally.
    total, per_pass = 30, 10
    release = threading.Event()
    hung = threading.Event()

    def api(_p: str, query: dict[str, list[str]], _h: object) -> Reply:
        since = int(query.get("since", ["0"])[0])
        if since >= 20 and not release.is_set():
            hung.set()
            release.wait(60)
            return Reply(503)
        ids = range(min(since + per_pass, total), since, -1)  # newest first
        items = [{"id": i, "t": f"Post number {i} about the {i * 7 % 13}th desk"} for i in ids]
        return Reply(200, json.dumps({"items": items}).encode())

    server.route("/api", api)
    sources_file = tmp_path / "sources.yaml"
    sources_file.write_text(
        "sources:\n  - name: api\n    kind: json\n"
        f"    url: {server.url('/api')}\n    allow_private_addresses: true\n"
        "    schedule: {interval_s: 1, jitter_s: 0}\n"
        "    mapping: {items: items, id: id, title: t}\n"
        "    pagination: {since_field: id, since_param: since, max_pages: 1}\n"
    )
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers or "",
        "FINSENTINEL_TOPIC_PREFIX": topics.raw_news.split(".")[0],
        "FINSENTINEL_INGEST_STATE_DIR": str(tmp_path / "state"),
        "FINSENTINEL_INGEST_METRICS_PORT": "0",
        "FINSENTINEL_INGEST_PER_HOST_MIN_INTERVAL_S": "0",
        "FINSENTINEL_LOG_LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "ingest", "--sources", str(sources_file)]

    first = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        assert hung.wait(60), "the crawler never reached its third pass"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    release.set()
    assert len(produced_keys(kafka_settings, topics.raw_comments, expect=20)) == 20

    second = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        ids: list[str] = []
        while time.monotonic() < deadline and len(set(ids)) < total:
            ids = produced_keys(kafka_settings, topics.raw_comments, expect=total)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0  # SIGTERM: finish the pass, flush, exit 0

    assert sorted(ids) == sorted(doc_id("api", str(i)) for i in range(1, total + 1))
