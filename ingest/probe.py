"""Probe sources without producing: reachable, robots allowed, parses, how many entries."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from ingest.config import SourceSpec
from ingest.exceptions import IngestError
from ingest.http import Fetcher
from ingest.netguard import AddressGuard, Resolver, system_resolve
from ingest.robots import RobotsCache
from ingest.settings import IngestSettings
from ingest.sources import FetchContext, build_source
from ingest.sources.base import Rejected

__all__ = ["ProbeResult", "probe_sources"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of probing one source."""

    name: str
    kind: str
    status: str
    entries: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when the source answered and parsed."""
        return self.status in ("ok", "not_modified")


def probe_sources(
    settings: IngestSettings,
    specs: Iterable[SourceSpec],
    *,
    resolve: Resolver = system_resolve,
) -> list[ProbeResult]:
    """One pass of each source from an empty cursor; results only, nothing stored."""
    fetcher = Fetcher(settings, guard=AddressGuard(resolve))
    fetcher.robots = RobotsCache(
        fetcher, agent=settings.user_agent_product, ttl_s=settings.robots_cache_ttl_s
    ).check
    ctx = FetchContext(fetcher, settings, lambda: datetime.now(UTC))
    results = []
    try:
        for spec in specs:
            results.append(_probe(ctx, spec))
    finally:
        fetcher.close()
    return results


def _probe(ctx: FetchContext, spec: SourceSpec) -> ProbeResult:
    if not spec.enabled:
        return ProbeResult(spec.name, spec.kind, "disabled")
    try:
        result = build_source(spec).fetch(ctx, {})
    except IngestError as exc:
        return ProbeResult(spec.name, spec.kind, exc.outcome, detail=str(exc))
    detail = _rejected_detail(result.rejected)
    if result.more:
        detail = (detail + "; " if detail else "") + "more than one pass of data"
    return ProbeResult(spec.name, spec.kind, "ok", len(result.candidates), detail)


def _rejected_detail(rejected: list[Rejected], shown: int = 3) -> str:
    """``2 records unusable: empty_text (item 4 has no title or body); ...``."""
    if not rejected:
        return ""
    reasons = "; ".join(f"{r.reason} ({r.detail[:120]})" for r in rejected[:shown])
    more = f"; and {len(rejected) - shown} more" if len(rejected) > shown else ""
    return f"{len(rejected)} records unusable: {reasons}{more}"
