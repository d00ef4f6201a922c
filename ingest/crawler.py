"""The wiring shared by the service, ``run_once`` and the CLI.

A :class:`Crawler` owns one fetcher (shared per-host limits), one robots
cache, one dedup store, one producer and one pipeline, plus a circuit breaker
and a cursor per source. :meth:`Crawler.run_pass` runs sources' passes and
commits them as one batch; a failing source is reported and backed off, never
allowed to stop the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from ingest.breaker import CircuitBreaker
from ingest.config import SourceSpec
from ingest.dedup import DedupStore
from ingest.entities import EntityExtractor
from ingest.exceptions import FetchError, IngestError
from ingest.http import Fetcher
from ingest.metrics import IngestMetrics
from ingest.netguard import AddressGuard, Resolver, system_resolve
from ingest.pipeline import Pipeline, SourceReport
from ingest.producer import DocumentProducer
from ingest.robots import RobotsCache
from ingest.settings import IngestSettings
from ingest.sources import FetchContext, FetchResult, Source, build_source
from ingest.state import CursorStore
from stream.contracts.schemas import RawDocument, StoryBreadth
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings

__all__ = ["Crawler", "IngestReport"]

logger = logging.getLogger(__name__)

_MAX_DRAIN_PASSES = 10_000


@dataclass
class IngestReport:
    """Totals over the sources of one or more passes."""

    sources: dict[str, SourceReport] = field(default_factory=dict)

    @property
    def produced(self) -> int:
        """Documents the broker acknowledged."""
        return sum(r.produced for r in self.sources.values())

    @property
    def duplicates(self) -> Counter[str]:
        """Dropped duplicates by kind (``known``, ``exact``, ``near``)."""
        return sum((r.duplicates for r in self.sources.values()), Counter())

    @property
    def rejected(self) -> Counter[str]:
        """Dead-lettered records by reason."""
        return sum((r.rejected for r in self.sources.values()), Counter())

    @property
    def failed(self) -> dict[str, str]:
        """Sources whose last pass failed or was not fully acknowledged, with the reason."""
        return {n: r.error for n, r in self.sources.items() if r.error is not None}

    @property
    def documents(self) -> list[RawDocument]:
        """Every produced document, in production order per source."""
        return [d for r in self.sources.values() for d in r.documents]

    @property
    def breadth(self) -> list[StoryBreadth]:
        """Every acknowledged breadth update (stories that spread to more outlets)."""
        return [b for r in self.sources.values() for b in r.breadth]

    def summary(self) -> str:
        """One line for logs and the CLI."""
        dups = ", ".join(f"{k} {v}" for k, v in sorted(self.duplicates.items())) or "0"
        rejected = sum(self.rejected.values())
        return (
            f"{self.produced} produced, duplicates: {dups}, {len(self.breadth)} breadth updates, "
            f"{rejected} rejected, {len(self.failed)} sources failed"
        )


class Crawler:
    """Runs source passes; build one per process (it is thread-safe)."""

    def __init__(
        self,
        settings: IngestSettings,
        specs: Iterable[SourceSpec],
        *,
        kafka: KafkaSettings,
        topics: TopicNames,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        resolve: Resolver = system_resolve,
        producer: DocumentProducer | None = None,
        entities: EntityExtractor | None = None,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.sources: dict[str, Source] = {s.name: build_source(s) for s in specs}
        self.clock = clock
        self._stopping = threading.Event()
        if metrics is None:
            metrics = IngestMetrics((), registry=registry)
        metrics.declare_sources(self.sources)  # built earlier (at start-up) or just now
        self.metrics = metrics
        self.fetcher = Fetcher(settings, guard=AddressGuard(resolve), sleep=self._sleep)
        robots = RobotsCache(
            self.fetcher, agent=settings.user_agent_product, ttl_s=settings.robots_cache_ttl_s
        )
        self.fetcher.robots = robots.check
        state = settings.state_dir
        self.dedup = DedupStore(
            state / "dedup.sqlite3",
            near_min_similarity=settings.near_duplicate_min_similarity,
            near_window_s=settings.near_window_s,
            retention_s=settings.dedup_retention_s,
            max_entries=settings.dedup_max_entries,
            clock=lambda: self.clock().timestamp(),
        )
        self.cursors = CursorStore(state / "cursors")
        self.breakers = {
            name: CircuitBreaker(
                threshold=settings.breaker_failure_threshold,
                cooldown_s=settings.breaker_cooldown_s,
                max_cooldown_s=settings.breaker_max_cooldown_s,
            )
            for name in self.sources
        }
        self.producer = producer or DocumentProducer(
            kafka, ack_timeout_s=settings.produce_timeout_s
        )
        self.pipeline = Pipeline(
            topics=topics,
            producer=self.producer,
            dedup=self.dedup,
            entities=entities
            or EntityExtractor.from_files(settings.alias_files, always=settings.tickers_always),
            metrics=self.metrics,
            near_min_similarity=settings.near_duplicate_min_similarity,
            near_min_words=settings.near_duplicate_min_words,
            clock=clock,
        )
        self._context = FetchContext(self.fetcher, settings, clock)

    def _sleep(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise FetchError("the crawler is stopping")

    def stop(self) -> None:
        """Cut retry waits short; passes in progress end soon after."""
        self._stopping.set()

    def close(self) -> None:
        """Flush and close the producer, the HTTP pools and the dedup store."""
        self.stop()
        self.producer.close()
        self.fetcher.close()
        self.dedup.close()

    def backed_off(self) -> list[str]:
        """Sources whose circuit breaker is open now."""
        return [name for name, b in self.breakers.items() if b.state == "open"]

    def drain(self, names: Sequence[str], report: IngestReport | None = None) -> IngestReport:
        """Run passes of ``names`` until none has more waiting (back-fills span passes)."""
        report = report or IngestReport()
        pending = list(names)
        for _ in range(_MAX_DRAIN_PASSES):
            more = self.run_pass(pending, report)
            pending = [n for n in more if report.sources[n].complete]
            if not pending or self._stopping.is_set():
                break
        return report

    def run_pass(self, names: Sequence[str], report: IngestReport) -> list[str]:
        """One pass of each source in ``names``, committed together; returns those with more."""
        fetched: list[tuple[Source, FetchResult]] = []
        reports: dict[str, SourceReport] = {}
        for name in names:
            reports[name] = SourceReport(name)
            result = self._fetch(self.sources[name], reports[name])
            if result is not None:
                fetched.append((self.sources[name], result))
        if fetched:
            self.pipeline.process(fetched, reports)
        more = [self._finish(source, result, reports[source.name]) for source, result in fetched]
        for name, new in reports.items():
            _merge(report.sources.setdefault(name, SourceReport(name)), new)
        return [name for name, flag in zip((s.name for s, _ in fetched), more, strict=True) if flag]

    def _fetch(self, source: Source, report: SourceReport) -> FetchResult | None:
        name = source.name
        breaker = self.breakers[name]
        if not breaker.allow():
            report.outcome = "backed_off"
            report.error = f"backed off for another {breaker.retry_in_s():.0f} s"
            self.metrics.fetches.labels(source=name, outcome="backed_off").inc()
            return None
        started = time.monotonic()
        try:
            result = source.fetch(self._context, self.cursors.load(name))
        except IngestError as exc:
            self._failed(name, report, exc.outcome, str(exc))
            return None
        except Exception as exc:  # a bug in one source must not stop the others
            logger.exception("%s: unexpected error in the source", name)
            self._failed(name, report, "error", f"{type(exc).__name__}: {exc}")
            return None
        finally:
            self.metrics.fetch_duration.labels(source=name).observe(time.monotonic() - started)
        report.outcome = "not_modified" if result.not_modified else "ok"
        return result

    def _failed(self, name: str, report: SourceReport, outcome: str, error: str) -> None:
        report.outcome, report.error = outcome, error
        if self._stopping.is_set():
            logger.info("%s: pass interrupted by shutdown", name)
            return  # not the source's fault: no breaker count, no failure metric
        breaker = self.breakers[name]
        breaker.record_failure()
        logger.warning("%s: pass failed (%s): %s", name, outcome, error)
        self.metrics.fetches.labels(source=name, outcome=outcome).inc()
        self.metrics.consecutive_failures.labels(source=name).set(breaker.failures)
        self.metrics.backed_off.labels(source=name).set(1 if breaker.state == "open" else 0)

    def _finish(self, source: Source, result: FetchResult, report: SourceReport) -> bool:
        name = source.name
        self.metrics.fetches.labels(source=name, outcome=report.outcome).inc()
        breaker = self.breakers[name]
        if not report.complete:
            # The broker, not the source, failed: keep the cursor, retry next pass.
            report.error = f"{report.unacknowledged} records not acknowledged by the broker"
            logger.warning("%s: %s; cursor kept", name, report.error)
            return False
        self.cursors.save(name, result.state)
        breaker.record_success()
        self.metrics.last_success.labels(source=name).set(self.clock().timestamp())
        self.metrics.consecutive_failures.labels(source=name).set(0)
        self.metrics.backed_off.labels(source=name).set(0)
        logger.info(
            "%s: %s found, %s produced, %s duplicates, %s rejected",
            name,
            report.found,
            report.produced,
            sum(report.duplicates.values()),
            sum(report.rejected.values()),
        )
        return result.more


def _merge(into: SourceReport, new: SourceReport) -> None:
    into.outcome, into.error = new.outcome, new.error
    into.found += new.found
    into.produced += new.produced
    into.duplicates.update(new.duplicates)
    into.rejected.update(new.rejected)
    into.unacknowledged = new.unacknowledged
    into.documents.extend(new.documents)
    into.breadth.extend(new.breadth)
