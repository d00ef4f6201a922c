"""Main text of an article page, through the guarded fetcher and trafilatura."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ingest.http import Fetcher
from ingest.netguard import AllowPrivate

__all__ = ["extract_article", "extract_text"]

logger = logging.getLogger(__name__)


def extract_text(html: str, *, url: str | None = None) -> str | None:
    """The main text of an HTML page (boiler-plate, navigation, comments removed).

    >>> page = ("<html><body><nav>Home | Markets</nav><article><h1>Acme</h1><p>"
    ...         + "Acme Corp cut its forecast on Tuesday. " * 12 + "</p></article></body></html>")
    >>> text = extract_text(page)
    >>> "Acme Corp cut its forecast" in text, "Markets" in text
    (True, False)
    """
    import trafilatura  # heavy: imported only when articles are fetched

    text = trafilatura.extract(
        html, url=url, include_comments=False, include_tables=False, favor_precision=True
    )
    return text.strip() if text else None


def extract_article(
    fetcher: Fetcher,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    allow_private: AllowPrivate = False,
) -> str | None:
    """Fetch ``url`` (robots, SSRF guard, caps all apply) and extract its main text."""
    resp = fetcher.get(url, headers=headers, allow_private=allow_private)
    if resp.content_type and "html" not in resp.content_type:
        logger.info("%s is %s, not HTML: no article text", url, resp.content_type)
        return None
    return extract_text(resp.text(), url=resp.url)
