"""Source implementations behind one interface (:class:`~ingest.sources.base.Source`)."""

from __future__ import annotations

from ingest.config import FilesSpec, JsonApiSpec, RssSpec, SourceSpec
from ingest.presets import expand
from ingest.sources.base import Candidate, FetchContext, FetchResult, Rejected, Source
from ingest.sources.files import LocalFilesSource
from ingest.sources.jsonapi import JsonApiSource
from ingest.sources.rss import RssSource

__all__ = [
    "Candidate",
    "FetchContext",
    "FetchResult",
    "Rejected",
    "Source",
    "build_source",
]


def build_source(spec: SourceSpec) -> Source:
    """The source object for a spec (presets expanded to a JSON API source)."""
    spec = expand(spec)
    if isinstance(spec, RssSpec):
        return RssSource(spec)
    if isinstance(spec, JsonApiSpec):
        return JsonApiSource(spec)
    if isinstance(spec, FilesSpec):
        return LocalFilesSource(spec)
    raise TypeError(f"no source implementation for {type(spec).__name__}")
