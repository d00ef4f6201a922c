"""Ready-made JSON API sources: Reddit listings, StockTwits streams, HN Algolia search.

Each preset expands a short spec (a subreddit, a symbol, a query) into a full
:class:`~ingest.config.JsonApiSpec`, so users add a subreddit or a cashtag in
the sources file, not in code.

>>> from ingest.config import RedditSpec
>>> spec = expand(RedditSpec(name="r-stocks", kind="reddit", subreddit="stocks"))
>>> spec.url, spec.mapping.items, spec.pagination.cursor_param
('https://www.reddit.com/r/stocks/new.json', 'data.children', 'after')
>>> spec.finance_community  # r/stocks: bare upper-case symbols need less context
True
"""

from __future__ import annotations

from typing import Any

from ingest.config import (
    HNAlgoliaSpec,
    JsonApiSpec,
    JsonMapping,
    JsonPagination,
    RedditSpec,
    SourceSpec,
    StockTwitsSpec,
)

__all__ = ["FINANCE_SUBREDDITS", "expand"]

_COMMON = (
    "name",
    "enabled",
    "schedule",
    "tags",
    "doc_kind",
    "language",
    "allow_private_addresses",
    "headers",
    "credentials",
    "max_items_per_pass",
    "finance_community",
)

#: Subreddits whose posts are about securities (a reddit preset on one of them is a
#: finance community unless ``finance_community`` says otherwise).
FINANCE_SUBREDDITS = frozenset(
    {
        "stocks",
        "investing",
        "wallstreetbets",
        "options",
        "stockmarket",
        "dividends",
        "valueinvesting",
        "securityanalysis",
        "bogleheads",
        "thetagang",
        "pennystocks",
        "daytrading",
        "smallstreetbets",
        "superstonk",
        "algotrading",
        "financialindependence",
        "eupersonalfinance",
        "ukinvesting",
    }
)


def _common(spec: SourceSpec, *, community: bool = False) -> dict[str, Any]:
    common = {field: getattr(spec, field) for field in _COMMON}
    if common["finance_community"] is None:
        common["finance_community"] = community
    return common


def reddit(spec: RedditSpec) -> JsonApiSpec:
    """``/r/<sub>/new.json``: newest first, ``after`` cursor, stop at the last seen time."""
    base = spec.base_url.rstrip("/")
    return JsonApiSpec(
        kind="json",
        url=f"{base}/r/{spec.subreddit}/new.json",
        params={"limit": "100", "raw_json": "1"},
        mapping=JsonMapping(
            items="data.children",
            id="data.name",
            title="data.title",
            body="data.selftext",
            url="data.permalink",
            url_prefix=base,
            author="data.author",
            published_at="data.created_utc",
            published_format="epoch_s",
        ),
        pagination=JsonPagination(
            cursor_path="data.after",
            cursor_param="after",
            since_field="data.created_utc",
            max_pages=spec.max_pages,
        ),
        **_common(spec, community=spec.subreddit.lower() in FINANCE_SUBREDDITS),
    )


def stocktwits(spec: StockTwitsSpec) -> JsonApiSpec:
    """``/streams/symbol/<SYM>.json``: ``max`` cursor for older pages, ``since`` for new."""
    base = spec.base_url.rstrip("/")
    return JsonApiSpec(
        kind="json",
        url=f"{base}/streams/symbol/{spec.symbol}.json",
        mapping=JsonMapping(
            items="messages",
            id="id",
            body="body",
            author="user.username",
            published_at="created_at",
            tickers="symbols.*.symbol",
        ),
        pagination=JsonPagination(
            cursor_path="cursor.max",
            cursor_param="max",
            since_field="id",
            since_param="since",
            max_pages=spec.max_pages,
        ),
        **_common(spec, community=True),
    )


def hn_algolia(spec: HNAlgoliaSpec) -> JsonApiSpec:
    """``/api/v1/search_by_date?query=...``: page numbers, ``created_at_i`` as the mark."""
    base = spec.base_url.rstrip("/")
    comments = spec.hn_tags == "comment"
    return JsonApiSpec(
        kind="json",
        url=f"{base}/api/v1/search_by_date",
        params={"query": spec.query, "tags": spec.hn_tags, "hitsPerPage": "100"},
        mapping=JsonMapping(
            items="hits",
            id="objectID",
            title=None if comments else "title",
            body="comment_text" if comments else "story_text",
            url="url",
            author="author",
            published_at="created_at_i",
            published_format="epoch_s",
        ),
        pagination=JsonPagination(
            page_param="page",
            since_field="created_at_i",
            since_param="numericFilters",
            since_template="created_at_i>{since}",
            max_pages=spec.max_pages,
        ),
        **_common(spec),
    )


def expand(spec: SourceSpec) -> SourceSpec:
    """The full JSON API spec for a preset; other specs are returned as they are."""
    if isinstance(spec, RedditSpec):
        return reddit(spec)
    if isinstance(spec, StockTwitsSpec):
        return stocktwits(spec)
    if isinstance(spec, HNAlgoliaSpec):
        return hn_algolia(spec)
    return spec
