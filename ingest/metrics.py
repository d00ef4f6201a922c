"""Prometheus metrics of the crawlers (``finsentinel_ingest_*``).

Labels come from fixed sets: ``source`` from the sources file, ``outcome``
from :data:`ingest.exceptions.FETCH_OUTCOMES`, ``kind`` and ``reason`` from
the schema's literals. Every series is created at start-up so dashboards see
zeros instead of gaps, and so ``rate()`` sees the first pass's increase: a
counter whose first scrape already holds a pass's documents has no earlier
sample to rise from. A process that crawls only after a slow start (the demo
loads a model first) builds its metrics before that start and hands them to
the crawler (``Crawler(metrics=...)``, ``run_once(metrics=...)``).

>>> from prometheus_client import CollectorRegistry
>>> reg = CollectorRegistry()
>>> m = IngestMetrics(["wire"], registry=reg)
>>> m.fetches.labels(source="wire", outcome="ok").inc()
>>> reg.get_sample_value("finsentinel_ingest_fetches_total", {"source": "wire", "outcome": "ok"})
1.0
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from ingest.exceptions import FETCH_OUTCOMES
from stream.contracts.schemas import REJECT_REASONS

__all__ = ["DUPLICATE_KINDS", "IngestMetrics"]

#: ``known``: this very document again (re-crawl); ``exact``/``near``: another copy.
DUPLICATE_KINDS = ("known", "exact", "near")
_FETCH_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class IngestMetrics:
    """All crawler metrics, registered on ``registry``."""

    def __init__(
        self, sources: Iterable[str], *, registry: CollectorRegistry | None = None
    ) -> None:
        reg = registry if registry is not None else REGISTRY
        ns = "finsentinel_ingest"
        self.fetches = Counter(
            f"{ns}_fetches", "Source passes by outcome.", ["source", "outcome"], registry=reg
        )
        self.fetch_duration = Histogram(
            f"{ns}_fetch_duration_seconds",
            "Wall time of one source pass (fetch and parse).",
            ["source"],
            buckets=_FETCH_BUCKETS_S,
            registry=reg,
        )
        self.produced = Counter(
            f"{ns}_documents_produced",
            "Documents acknowledged by the broker.",
            ["source", "kind"],
            registry=reg,
        )
        self.duplicates = Counter(
            f"{ns}_duplicates_dropped",
            "Candidates dropped as duplicates.",
            ["source", "kind"],
            registry=reg,
        )
        self.rejected = Counter(
            f"{ns}_rejected",
            "Records sent to the dead-letter topic.",
            ["source", "reason"],
            registry=reg,
        )
        self.unacknowledged = Counter(
            f"{ns}_produce_failures",
            "Documents the broker did not acknowledge (retried).",
            ["source"],
            registry=reg,
        )
        self.breadth_updates = Counter(
            f"{ns}_breadth_updates",
            "Story breadth updates acknowledged (a produced story carried by more outlets).",
            ["source"],
            registry=reg,
        )
        self.last_success = Gauge(
            f"{ns}_last_success_timestamp_seconds",
            "Unix time of the last successful pass.",
            ["source"],
            registry=reg,
        )
        self.backed_off = Gauge(
            f"{ns}_source_backed_off",
            "1 while the source's circuit breaker is open.",
            ["source"],
            registry=reg,
        )
        self.consecutive_failures = Gauge(
            f"{ns}_source_consecutive_failures",
            "Failed passes in a row.",
            ["source"],
            registry=reg,
        )
        self.declare_sources(sources)

    def declare_sources(self, sources: Iterable[str]) -> None:
        """Create every series of ``sources`` at zero (idempotent)."""
        for source in sources:
            self._init_source(source)

    def _init_source(self, source: str) -> None:
        for outcome in FETCH_OUTCOMES:
            self.fetches.labels(source=source, outcome=outcome)
        for kind in ("news", "comment"):
            self.produced.labels(source=source, kind=kind)
        for kind in DUPLICATE_KINDS:
            self.duplicates.labels(source=source, kind=kind)
        for reason in REJECT_REASONS:
            self.rejected.labels(source=source, reason=reason)
        self.fetch_duration.labels(source=source)
        self.unacknowledged.labels(source=source)
        self.breadth_updates.labels(source=source)
        self.last_success.labels(source=source)
        self.backed_off.labels(source=source).set(0)
        self.consecutive_failures.labels(source=source).set(0)
