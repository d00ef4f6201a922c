"""Running FinSentinel pipelines whose metrics the live PromQL test scrapes.

* :func:`demo_pipeline`: the lead's ``finsentinel demo --keep-running`` in a child
  process (its own embedded broker, the bundled corpus, one metrics endpoint).
* :func:`inprocess_pipeline`: the same services started here in threads on the
  session broker, sharing one registry served by one :class:`MetricsServer`; used
  while the demo command does not exist yet, or with ``FINSENTINEL_TEST_PIPELINE=inprocess``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from stream.contracts.topics import TopicNames
from stream.http import MetricsServer
from stream.kafka import KafkaSettings, ensure_topics
from stream.runtime import StopFlag
from tests.deploy.live import Process, free_port, http_get, wait_for

logger = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]


def demo_available() -> bool:
    """True once ``finsentinel demo`` is registered in the root CLI (which imports)."""
    try:
        import typer.main

        from finsentinel.cli import app
    except ImportError:
        return False
    return "demo" in getattr(typer.main.get_command(app), "commands", {})


@contextlib.contextmanager
def demo_pipeline(
    workdir: Path, bootstrap_servers: str | None = None
) -> Iterator[tuple[str, list[BaseException]]]:
    """``finsentinel demo --keep-running`` on a free metrics port.

    Yields the metrics endpoint ``host:port`` and an (empty) error list, like
    :func:`inprocess_pipeline`; the demo's own failures end its process.

    With ``bootstrap_servers`` the demo uses that broker (under its own fresh topic
    prefix) instead of starting a second embedded one.
    """
    port = free_port()
    demo = Process(
        [
            sys.executable,
            "-m",
            "finsentinel.cli",
            "demo",
            "--keep-running",
            "--metrics-port",
            str(port),
        ],
        workdir / "demo.log",
        cwd=workdir,
        env=_child_env(bootstrap_servers),
    )
    target = f"127.0.0.1:{port}"

    def serving() -> bool:
        if not demo.alive():
            raise AssertionError(f"finsentinel demo exited:\n{demo.tail()}")
        return b"finsentinel_" in http_get(f"http://{target}/metrics")

    try:
        wait_for("the demo's metrics endpoint", serving, timeout_s=180)
        try:
            yield target, []
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; the demo's log ends:\n{demo.tail()}") from exc
    finally:
        demo.stop(timeout_s=60)


def _child_env(bootstrap_servers: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "FINSENTINEL_"))}
    env["PYTHONPATH"] = str(REPO)
    if bootstrap_servers:
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap_servers
    return env


class _Threads:
    """Services running in daemon threads until one stop flag is set."""

    def __init__(self) -> None:
        self.stop = StopFlag()
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, name: str, target: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # reported by the test, not swallowed
                logger.exception("%s failed", name)
                self.errors.append(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self, timeout_s: float = 60.0) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=timeout_s)


@contextlib.contextmanager
def inprocess_pipeline(
    workdir: Path, kafka: KafkaSettings, model_dir: Path
) -> Iterator[tuple[str, list[BaseException]]]:
    """Crawler (one pass over the bundled corpus), scorer (with a shadow model), alerts,
    archive in threads.

    Yields the metrics endpoint ``host:port`` and the list that collects errors
    raised by the service threads.
    """
    from ingest.config import parse_sources
    from ingest.service import run_once
    from stream.history.archive import ArchiveSink
    from stream.history.settings import ArchiveSettings
    from stream.scorer.service import ScorerService
    from stream.scorer.settings import ScorerSettings

    topics = TopicNames.with_prefix(f"deploy{free_port()}")
    ensure_topics(kafka, topics.all)
    registry = CollectorRegistry()
    server = MetricsServer(registry, port=0).start()
    threads = _Threads()
    scorer = ScorerService(
        ScorerSettings(
            model_dir=model_dir,
            # The same model in shadow: the shadow panel and rule read its (zero) disagreement.
            shadow_model_dir=model_dir,
            provider="cpu",
            intra_op_threads=1,
            metrics_port=0,
            group_id=f"scorer-{topics.scored}",
        ),
        kafka=kafka,
        topics=topics,
        registry=registry,
    )
    threads.start("scorer", lambda: scorer.run(threads.stop))
    archive = ArchiveSink(
        ArchiveSettings(root_dir=workdir / "archive", metrics_port=0, max_file_age_s=5),
        kafka=kafka,
        topics=topics,
        registry=registry,
        serve_metrics=False,
    )
    threads.start("archive", lambda: archive.run(threads.stop))
    _start_alerts(threads, kafka, topics, registry, workdir, model_dir)
    corpus = workdir / "corpus"
    shutil.copytree(REPO / "finsentinel" / "demo_data", corpus)
    sources = parse_sources(
        {"sources": [{"name": "demo-files", "kind": "files", "path": str(corpus)}]}
    )
    threads.start(
        "crawler",
        lambda: run_once(
            sources, kafka=kafka, topics=topics, registry=registry, state_dir=workdir / "ingest"
        ),
    )
    try:
        yield f"127.0.0.1:{server.port}", threads.errors
    finally:
        threads.join()
        server.stop()


def _start_alerts(
    threads: _Threads,
    kafka: KafkaSettings,
    topics: TopicNames,
    registry: CollectorRegistry,
    workdir: Path,
    model_dir: Path,
) -> None:
    """The alerts service, with the corpus's tickers as the watch-list."""
    from alerts.service import AlertService
    from alerts.settings import AlertSettings
    from finsentinel.demo_corpus import COMPANIES
    from models.modeldir import load_model_dir

    service = AlertService(
        AlertSettings(
            metrics_port=0,
            db_path=workdir / "alerts.sqlite",
            group_id=f"alerts-{topics.scored}",
            evaluate_interval_s=1.0,
            metric_topics=tuple(load_model_dir(model_dir).card.topic_labels),
            watch_tickers=tuple(ticker for _, ticker, _ in COMPANIES),
        ),
        kafka=kafka,
        topics=topics,
        registry=registry,
    )
    threads.start("alerts", lambda: service.run(threads.stop))
