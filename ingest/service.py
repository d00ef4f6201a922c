"""The crawler service and the one-shot API the demo uses::

report = run_once(load_sources(Path("sources.yaml")), kafka=kafka,
                  topics=TopicNames(), state_dir=Path("var/ingest"))
report.produced, report.duplicates, report.rejected, report.failed
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from ingest.config import SourcesFile, SourceSpec, load_sources
from ingest.crawler import Crawler, IngestReport
from ingest.metrics import IngestMetrics
from ingest.netguard import Resolver, system_resolve
from ingest.scheduler import build_scheduler
from ingest.settings import IngestSettings
from stream.contracts.topics import TopicNames
from stream.http import MetricsServer
from stream.kafka import KafkaSettings
from stream.runtime import StopFlag

__all__ = ["IngestService", "run_once"]

logger = logging.getLogger(__name__)

SourcesArg = SourcesFile | Sequence[SourceSpec] | Path


def _specs(sources: SourcesArg) -> list[SourceSpec]:
    if isinstance(sources, Path):
        sources = load_sources(sources)
    if isinstance(sources, SourcesFile):
        return sources.enabled
    return [s for s in sources if s.enabled]


def run_once(
    sources: SourcesArg,
    *,
    kafka: KafkaSettings,
    topics: TopicNames,
    registry: CollectorRegistry | None = None,
    state_dir: Path | None = None,
    settings: IngestSettings | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    resolve: Resolver = system_resolve,
    metrics: IngestMetrics | None = None,
) -> IngestReport:
    """Crawl every enabled source until drained; return after the broker acknowledged it all.

    All sources' first passes are committed as one batch, so copies of a
    story across them are produced once with ``copies`` counted. Dedup state
    and cursors under ``state_dir`` persist, so a second call produces only
    what is new. ``state_dir`` overrides ``settings.state_dir``; ``registry``
    defaults to a private one (so repeated calls never clash); ``metrics``
    built at the caller's start-up (on its registry) are used instead, so the
    counters were at zero before this pass (see :mod:`ingest.metrics`).
    """
    settings = settings or IngestSettings()
    if state_dir is not None:
        settings = settings.model_copy(update={"state_dir": state_dir})
    specs = _specs(sources)
    crawler = Crawler(
        settings,
        specs,
        kafka=kafka,
        topics=topics,
        registry=registry if registry is not None else CollectorRegistry(),
        clock=clock,
        resolve=resolve,
        metrics=metrics,
    )
    try:
        report = crawler.drain([s.name for s in specs])
    finally:
        crawler.close()
    logger.info("run_once: %s", report.summary())
    return report


class IngestService:
    """Runs every enabled source on its schedule until stopped."""

    def __init__(
        self,
        settings: IngestSettings,
        sources: SourcesArg,
        *,
        kafka: KafkaSettings,
        topics: TopicNames,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        resolve: Resolver = system_resolve,
    ) -> None:
        self.settings = settings
        self.specs = _specs(sources)
        self.registry = registry if registry is not None else CollectorRegistry()
        # At construction, before the first pass: every series starts at zero.
        self.metrics = IngestMetrics([s.name for s in self.specs], registry=self.registry)
        self._kafka = kafka
        self._topics = topics
        self._clock = clock
        self._resolve = resolve
        self._crawler: Crawler | None = None
        self._ready = False
        #: Base URL of /metrics and /healthz once :meth:`run` started them.
        self.metrics_url: str | None = None

    @property
    def ready(self) -> bool:
        """True while the scheduler runs and the producer is connected."""
        return self._ready

    def status(self) -> str:
        """One line for /healthz."""
        if self._crawler is None:
            return "starting"
        parts = [f"{len(self.specs)} sources"]
        off = self._crawler.backed_off()
        if off:
            parts.append(f"backed off: {', '.join(off)}")
        unacked = self._crawler.pipeline.last_unacknowledged
        if unacked:
            parts.append(f"broker did not acknowledge {unacked} records of the last batch")
        return ", ".join(parts)

    def _job(self, name: str) -> None:
        assert self._crawler is not None
        report = self._crawler.drain([name])
        logger.debug("%s: %s", name, report.summary())

    def run(self, stop: StopFlag) -> None:
        """Crawl until ``stop`` is set; finish passes in progress, flush, close, return."""
        self._crawler = Crawler(
            self.settings,
            self.specs,
            kafka=self._kafka,
            topics=self._topics,
            registry=self.registry,
            clock=self._clock,
            resolve=self._resolve,
            metrics=self.metrics,
        )
        server = MetricsServer(
            self.registry,
            host=self.settings.metrics_host,
            port=self.settings.metrics_port,
            ready=lambda: self.ready,
            status=self.status,
        ).start()
        scheduler = build_scheduler(
            self.specs, self._job, max_workers=self.settings.max_concurrent_sources, now=self._clock
        )
        logger.info("crawling %s sources; metrics on %s", len(self.specs), server.url)
        self.metrics_url = server.url
        try:
            scheduler.start()
            self._ready = True
            while not stop.wait(0.5):
                pass
        finally:
            self._ready = False
            logger.info("stopping: finishing passes in progress")
            self._crawler.stop()
            if scheduler.running:
                scheduler.shutdown(wait=True)
            self._crawler.close()
            server.stop()
            logger.info("crawler stopped")
