"""FinSentinel crawlers: polite, deduplicating sources of financial news and comments.

The public API is re-exported here and imported lazily, so ``finsentinel --help``
does not pay for Kafka, numpy or feedparser::

    from ingest import load_sources, run_once
    report = run_once(load_sources(Path("sources.yaml")), kafka=kafka, topics=TopicNames())
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.config import SourcesFile, load_sources, parse_sources
    from ingest.crawler import Crawler, IngestReport
    from ingest.entities import EntityExtractor
    from ingest.exceptions import IngestError
    from ingest.pipeline import SourceReport
    from ingest.service import IngestService, run_once
    from ingest.settings import IngestSettings

__all__ = [
    "Crawler",
    "EntityExtractor",
    "IngestError",
    "IngestReport",
    "IngestService",
    "IngestSettings",
    "SourceReport",
    "SourcesFile",
    "load_sources",
    "parse_sources",
    "run_once",
]

_WHERE = {
    "Crawler": "ingest.crawler",
    "EntityExtractor": "ingest.entities",
    "IngestError": "ingest.exceptions",
    "IngestReport": "ingest.crawler",
    "IngestService": "ingest.service",
    "IngestSettings": "ingest.settings",
    "SourceReport": "ingest.pipeline",
    "SourcesFile": "ingest.config",
    "load_sources": "ingest.config",
    "parse_sources": "ingest.config",
    "run_once": "ingest.service",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
