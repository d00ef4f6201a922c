"""A generic JSON API source: field mapping by dotted paths, cursor and since-id paging."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from ingest.config import JsonApiSpec, JsonMapping
from ingest.exceptions import ParseError
from ingest.normalize import to_utc
from ingest.sources.base import Candidate, FetchContext, FetchResult, Rejected, Source

__all__ = ["JsonApiSource", "get_path", "map_item"]

logger = logging.getLogger(__name__)


def get_path(obj: Any, path: str | None) -> Any:
    """The value at a dotted ``path``; ``*`` maps the rest of the path over a list.

    >>> data = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    >>> get_path(data, "a.b.1.c"), get_path(data, "a.b.*.c"), get_path(data, "a.x.y")
    (2, [1, 2], None)
    """
    if path is None:
        return None
    parts = path.split(".")
    for i, part in enumerate(parts):
        if part == "*":
            if not isinstance(obj, list):
                return None
            rest = ".".join(parts[i + 1 :])
            values = [get_path(item, rest) if rest else item for item in obj]
            return [v for v in values if v is not None]
        if isinstance(obj, dict):
            obj = obj.get(part)
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return None
    return obj


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def map_item(item: Any, mapping: JsonMapping) -> Candidate | Rejected:
    """One JSON item as a candidate, or a rejection saying which field is wrong."""
    raw = json.dumps(item, default=str).encode()[:100_000]
    if not isinstance(item, dict):
        return Rejected("schema_violation", f"item is {type(item).__name__}, not an object", raw)
    key = get_path(item, mapping.id)
    if key is None or key == "":
        return Rejected("schema_violation", f"item has no id at {mapping.id!r}", raw)
    published_raw = get_path(item, mapping.published_at)
    published = _timestamp(published_raw, mapping.published_format)
    if published_raw not in (None, "") and published is None:
        return Rejected("schema_violation", f"unparseable timestamp {published_raw!r}", raw)
    url = get_path(item, mapping.url)
    if url and mapping.url_prefix and not str(url).startswith(("http://", "https://")):
        url = mapping.url_prefix.rstrip("/") + "/" + str(url).lstrip("/")
    tickers = get_path(item, mapping.tickers)
    if isinstance(tickers, str):
        tickers = [tickers]
    return Candidate(
        key=str(key),
        title=_text(get_path(item, mapping.title)),
        body=_text(get_path(item, mapping.body)),
        url=str(url) if url else None,
        author=_text(get_path(item, mapping.author)) or None,
        published_at=published,
        tickers=tuple(str(t) for t in tickers or ()),
        raw=raw,
    )


def _timestamp(value: Any, fmt: str) -> Any:
    if value in (None, ""):
        return None
    if fmt == "iso":
        return to_utc(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return to_utc(number / 1000.0 if fmt == "epoch_ms" else number)


def _mark_le(mark: Any, since: Any) -> bool:
    try:
        return float(mark) <= float(since)
    except (TypeError, ValueError):
        return str(mark) <= str(since)


def _mark_lt(mark: Any, since: Any) -> bool:
    # Items exactly at the mark are kept: several can share a timestamp, and the
    # dedup store drops the ones already produced.
    return _mark_le(mark, since) and not _mark_le(since, mark)


def _mark_max(a: Any, b: Any) -> Any:
    if a is None:
        return b
    return a if _mark_le(b, a) else b


class JsonApiSource(Source):
    """Pages through a JSON API until it reaches items already seen (since-id)."""

    spec: JsonApiSpec

    def fetch(self, ctx: FetchContext, state: Mapping[str, Any]) -> FetchResult:
        """One pass: newest items first, stopping at the stored high-water mark."""
        pag, mapping = self.spec.pagination, self.spec.mapping
        since = state.get("since")
        options = self.request_options()
        params: dict[str, str] = {**self.spec.params, **options.pop("params")}
        if pag.since_param and since is not None:
            params[pag.since_param] = pag.since_template.format(since=since)
        result = FetchResult(state=dict(state))
        newest, page = since, pag.first_page
        for _ in range(pag.max_pages):
            if pag.page_param:
                params[pag.page_param] = str(page)
            data = self._get_json(ctx, params, options)
            items = get_path(data, mapping.items)
            if not isinstance(items, list):
                raise ParseError(f"{self.name}: no list at {mapping.items!r} in the response")
            reached_mark = False
            for item in items:
                mark = get_path(item, pag.since_field) if pag.since_field else None
                if since is not None and mark is not None and _mark_lt(mark, since):
                    reached_mark = True
                    continue
                newest = _mark_max(newest, mark) if mark is not None else newest
                mapped = map_item(item, mapping)
                (result.rejected if isinstance(mapped, Rejected) else result.candidates).append(
                    mapped  # type: ignore[arg-type]
                )
            if reached_mark or not items or len(result.candidates) >= self.spec.max_items_per_pass:
                break
            cursor = get_path(data, pag.cursor_path) if pag.cursor_path else None
            if pag.cursor_param and cursor:
                params[pag.cursor_param] = str(cursor)
            elif pag.page_param:
                page += 1
            else:
                break
        result.candidates = result.candidates[: self.spec.max_items_per_pass]
        if newest is not None:
            result.state["since"] = newest
        return result

    def _get_json(self, ctx: FetchContext, params: dict[str, str], options: dict[str, Any]) -> Any:
        resp = ctx.fetcher.get(self.spec.url, params=params, **options)
        try:
            return json.loads(resp.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ParseError(f"{self.name}: response is not JSON: {exc}") from exc
