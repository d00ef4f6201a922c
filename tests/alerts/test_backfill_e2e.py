"""A back-fill by hand raises the alert a live run would have (issue 18, finding 1).

The sequence a new user runs, on the session broker: the scorer and the
archive (in threads), ``finsentinel alert --history`` (a child process, default
settings plus that one flag), then ``finsentinel crawl --once`` over a files
source holding the demo corpus (a child process). Before, this raised nothing:
the files were read one after another (140 of 457 documents late), the
corpus is days old so the watermark never moved, and nothing flushed the
windows at the end of the input.

Uses the shipped model (``models/default``): the corpus's sentiment must be real.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from finsentinel.demo_corpus import DEMO_ALIASES, DEMO_DATA_DIR
from models.modeldir import DEFAULT_MODEL_DIR
from stream.contracts.schemas import Alert, decode
from stream.contracts.topics import TOPIC_PREFIX_ENV, TopicNames
from stream.kafka import KafkaSettings, ensure_topics, make_consumer
from stream.runtime import StopFlag
from tests.deploy.live import Process

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DEFAULT_MODEL_DIR / "model_card.json").exists(),
        reason="the shipped model models/default is missing (make model builds it)",
    ),
]
REPO = Path(__file__).resolve().parents[2]


def _env(broker: str, prefix: str, workdir: Path) -> dict[str, str]:
    """A user's shell: the broker, the topic prefix, where the crawler's state goes, and
    the corpus's company names (its alias table, as ``finsentinel demo`` uses it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "FINSENTINEL_"))}
    env.update(
        PYTHONPATH=str(REPO),
        KAFKA_BOOTSTRAP_SERVERS=broker,
        FINSENTINEL_INGEST_STATE_DIR=str(workdir / "ingest"),
        FINSENTINEL_INGEST_ALIAS_FILES=json.dumps([str(DEMO_ALIASES)]),
    )
    env[TOPIC_PREFIX_ENV] = prefix
    return env


@pytest.fixture
def services(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[tuple[TopicNames, str]]:
    """Scorer and archive in threads on fresh topics (``finsentinel score`` / ``archive``)."""
    from stream.history.archive import ArchiveSink
    from stream.history.settings import ArchiveSettings
    from stream.scorer.service import ScorerService
    from stream.scorer.settings import ScorerSettings

    prefix = f"bf{uuid.uuid4().hex[:10]}"
    topics = TopicNames.with_prefix(prefix)
    ensure_topics(kafka_settings, topics.all)
    stop, errors = StopFlag(), []
    scorer = ScorerService(
        ScorerSettings(metrics_port=0, group_id=f"{prefix}-scorer"),
        kafka=kafka_settings,
        topics=topics,
        registry=CollectorRegistry(),
    )
    archive = ArchiveSink(
        ArchiveSettings(root_dir=tmp_path / "archive", metrics_port=0, group_id=f"{prefix}-ar"),
        kafka=kafka_settings,
        topics=topics,
        registry=CollectorRegistry(),
        serve_metrics=False,
    )
    threads = [_start(scorer.run, stop, errors), _start(archive.run, stop, errors)]
    try:
        _wait("the scorer", lambda: scorer.ready, errors, timeout_s=180)
        yield topics, prefix
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors


def _start(
    run: Callable[[StopFlag], None], stop: StopFlag, errors: list[BaseException]
) -> threading.Thread:
    def target() -> None:
        try:
            run(stop)
        except BaseException as exc:  # reported by the fixture, not swallowed
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _wait(what: str, done: Callable[[], bool], errors: list[Any], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert not errors, errors
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_backfill_of_the_demo_corpus_raises_the_crbk_alert(
    broker: str,
    kafka_settings: KafkaSettings,
    services: tuple[TopicNames, str],
    tmp_path: Path,
) -> None:
    topics, prefix = services
    env = _env(broker, prefix, tmp_path)
    cli = [sys.executable, "-m", "finsentinel.cli"]
    alert = Process(
        [
            *cli,
            "alert",
            "--history",
            "--db",
            str(tmp_path / "alerts.sqlite"),
            "--metrics-port",
            "0",
        ],
        tmp_path / "alert.log",
        cwd=tmp_path,
        env=env,
    )
    try:
        corpus = tmp_path / "corpus"
        shutil.copytree(DEMO_DATA_DIR, corpus)
        sources = tmp_path / "sources.yaml"
        spec = {"name": "backfill", "kind": "files", "path": str(corpus)}
        sources.write_text(yaml.safe_dump({"sources": [spec]}))
        crawl = Process(
            [*cli, "crawl", "--sources", str(sources), "--once", "backfill"],
            tmp_path / "crawl.log",
            cwd=tmp_path,
            env=env,
        )
        assert crawl.proc.wait(timeout=300) == 0, crawl.tail()
        crawl.stop()
        firing = _wait_for_firing(kafka_settings, topics, "CRBK", alert)
        quiet = _wait_for_line(alert, "history input quiet")
    finally:
        alert.stop(timeout_s=60)
    log = " ".join(alert.tail(200_000).split())
    assert alert.proc.returncode == 0, log[-3000:]
    assert "history mode: the watermark follows event time only" in log
    assert " 0 late, 0 future" in quiet, quiet
    assert "late or future documents" not in log
    assert any(
        "Crescent Regional Bank" in ev.title or "$CRBK" in ev.title for ev in firing.evidence
    )


def _wait_for_firing(
    kafka: KafkaSettings, topics: TopicNames, series: str, alert: Process
) -> Alert:
    consumer = make_consumer(kafka, group_id=None, topics=[topics.alerts])
    deadline = time.monotonic() + 420
    try:
        while time.monotonic() < deadline:
            assert alert.alive(), alert.tail()
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    got = decode(record.value, Alert)
                    if got.state == "firing" and got.series == series:
                        return got
    finally:
        consumer.close()
    raise AssertionError(f"no firing alert for {series}; the alert service's log:\n{alert.tail()}")


def _wait_for_line(process: Process, needle: str) -> str:
    """The logged message starting with ``needle`` (the console wraps long lines)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = " ".join(process.tail(200_000).split())
        if needle in text:
            return text[text.index(needle) :].split(" INFO ")[0]
        time.sleep(0.5)
    raise AssertionError(f"{needle!r} not logged:\n{process.tail()}")
