"""Turn a source's candidate into a valid :class:`~stream.contracts.schemas.RawDocument`,
or a rejection.

Normalisation: HTML stripped and whitespace collapsed, canonical URL, UTC
timestamps (future dates clamped to the fetch time), fields cut to the schema's
limits, tickers extracted with relevance, a stable id from source + item key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from pydantic import ValidationError

from ingest.config import SourceSpec
from ingest.dedup import Seen
from ingest.entities import EntityExtractor
from ingest.fingerprint import minhash
from ingest.normalize import canonical_url, clean_text, content_hash, doc_id
from ingest.sources.base import Candidate, Rejected
from stream.contracts.schemas import RawDocument

__all__ = ["Built", "build_document"]

logger = logging.getLogger(__name__)

_MAX_TITLE, _MAX_BODY, _MAX_URL, _MAX_SHORT = 2_000, 200_000, 2_048, 512


@dataclass(frozen=True)
class Built:
    """A valid document and its dedup fingerprint."""

    doc: RawDocument
    seen: Seen


def build_document(
    cand: Candidate,
    spec: SourceSpec,
    entities: EntityExtractor,
    fetched_at: datetime,
    *,
    near_min_words: int = 20,
) -> Built | Rejected:
    """Normalise ``cand`` from source ``spec``; never raises for bad data."""
    title = clean_text(cand.title)[:_MAX_TITLE]
    body = clean_text(cand.body)[:_MAX_BODY]
    if not (title or body):
        return Rejected("empty_text", "title and body are empty after cleaning", cand.raw)
    url = _url(cand.url)
    source = (cand.source or spec.name)[:128]
    tickers, relevance = entities.extract(
        title, body, explicit=cand.tickers, community=bool(spec.finance_community)
    )
    published = cand.published_at or fetched_at
    if published > fetched_at:
        published = fetched_at
    try:
        doc = RawDocument(
            id=doc_id(source, cand.key),
            source=source,
            kind=cand.kind or spec.doc_kind,  # type: ignore[arg-type]
            url=url,
            title=title,
            body=body,
            author=cand.author[:_MAX_SHORT] if cand.author else None,
            language=spec.language,
            tickers=tickers,
            ticker_relevance=relevance,
            tags=list(dict.fromkeys(t[:_MAX_SHORT] for t in (*spec.tags, *cand.tags)))[:64],
            published_at=published,
            fetched_at=fetched_at,
        )
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        return Rejected("schema_violation", detail, cand.raw)
    words = len(doc.text.split())
    seen = Seen(
        doc.id,
        content_hash(title, body),
        _identifying(url),
        minhash(doc.text),
        near_eligible=words >= near_min_words,
    )
    return Built(doc, seen)


def _identifying(url: str | None) -> str | None:
    """The URL if it can identify a story; feeds that link every item to their
    home page must not make all items "the same URL".

    >>> _identifying("https://x.test/"), _identifying("https://x.test/a/1")
    (None, 'https://x.test/a/1')
    """
    if url is None:
        return None
    parts = urlsplit(url)
    return url if parts.path not in ("", "/") or parts.query else None


def _url(raw: str | None) -> str | None:
    if not raw or not raw.startswith(("http://", "https://")):
        return None
    try:
        url = canonical_url(raw)
    except ValueError:
        return None
    return url if len(url) <= _MAX_URL else None
