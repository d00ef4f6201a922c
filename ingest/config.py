"""The sources file: which sources to crawl, how often, with which options.

A YAML document with optional ``defaults`` and a list of ``sources``; each
source has a ``name``, a ``kind`` and the fields of that kind. Validation
errors name the source and the field::

    sources:
      - name: wire-markets
        kind: rss
        url: https://example.com/markets.rss
        schedule: {interval_s: 300, jitter_s: 30}
      - name: reddit-stocks
        kind: reddit
        subreddit: stocks

>>> spec = parse_sources({"sources": [{"name": "r", "kind": "reddit", "subreddit": "stocks"}]})
>>> spec.sources[0].schedule.interval_s, spec.sources[0].doc_kind
(300.0, 'comment')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    model_validator,
)

from ingest.exceptions import SourceConfigError

__all__ = [
    "Credentials",
    "FilesSpec",
    "HNAlgoliaSpec",
    "JsonApiSpec",
    "JsonMapping",
    "JsonPagination",
    "RedditSpec",
    "RssSpec",
    "Schedule",
    "SourceSpec",
    "SourcesFile",
    "StockTwitsSpec",
    "load_sources",
    "parse_sources",
]

SourceName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Schedule(_Model):
    """When a source runs: every ``interval_s`` or on a ``cron`` expression, plus jitter."""

    interval_s: float | None = Field(default=None, ge=1)
    #: Five-field crontab, e.g. ``*/5 * * * mon-fri`` (UTC). Day-of-week by name only:
    #: numbers are ambiguous (cron counts from Sunday, APScheduler 3 from Monday).
    cron: str | None = None
    jitter_s: float = Field(default=10.0, ge=0)
    #: A run that could not start on time still starts if it is at most this late.
    misfire_grace_s: float = Field(default=60.0, ge=1)

    @model_validator(mode="after")
    def _one_trigger(self) -> Schedule:
        if self.interval_s is not None and self.cron is not None:
            raise ValueError("give either interval_s or cron, not both")
        if self.cron is not None:
            self.cron_trigger()
        elif self.interval_s is None:
            object.__setattr__(self, "interval_s", 300.0)
        return self

    def cron_trigger(self) -> CronTrigger:
        """The APScheduler trigger for :attr:`cron` (with jitter)."""
        fields = (self.cron or "").split()
        if len(fields) != 5:
            raise ValueError(f"cron {self.cron!r} must have 5 fields: minute hour day month dow")
        if any(ch.isdigit() for ch in fields[4]):
            raise ValueError(
                f"cron {self.cron!r}: write day-of-week with names (mon-fri, sun), not numbers"
            )
        minute, hour, day, month, dow = fields
        try:
            return CronTrigger(
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=dow,
                timezone="UTC",
                jitter=int(self.jitter_s) or None,
            )
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {self.cron!r}: {exc}") from exc


class Credentials(_Model):
    """A secret read from an environment variable and sent as a header or query parameter."""

    env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    header: str | None = "Authorization"
    query_param: str | None = None
    #: Put in front of the secret, e.g. ``"Bearer "``.
    prefix: str = ""

    @model_validator(mode="after")
    def _one_place(self) -> Credentials:
        if self.query_param is not None:
            object.__setattr__(self, "header", None)
        if self.header is None and self.query_param is None:
            raise ValueError("credentials need a header or a query_param")
        return self

    def secret(self) -> SecretStr:
        """The secret from the environment; raises if the variable is unset."""
        value = os.environ.get(self.env)
        path = os.environ.get(f"{self.env}_FILE")
        if not value and path:  # container secrets mounted as files
            try:
                value = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SourceConfigError(
                    f"credentials: cannot read {self.env}_FILE={path}: {exc.strerror}"
                ) from exc
        if not value:
            raise SourceConfigError(
                f"credentials: environment variable {self.env} (or {self.env}_FILE) is not set"
            )
        return SecretStr(self.prefix + value)


class _SourceBase(_Model):
    name: SourceName
    enabled: bool = True
    schedule: Schedule = Schedule()
    tags: list[Annotated[str, Field(max_length=64)]] = []
    #: Which raw topic the documents go to.
    doc_kind: Literal["news", "comment"] = "news"
    language: str = "en"
    #: ``true``: also private and loopback hosts (intranet feeds, tests), never
    #: link-local; a list of networks (``[10.1.0.0/16]``): exactly those. Off by default.
    allow_private_addresses: bool | list[IPvAnyNetwork] = False
    #: Extra request headers (not secrets: use ``credentials``).
    headers: dict[str, str] = {}
    credentials: Credentials | None = None
    #: Upper bound on documents taken from one pass.
    max_items_per_pass: int = Field(default=500, ge=1)
    #: The source is a finance community (a finance subreddit, StockTwits): a bare
    #: upper-case symbol there needs less context to count as a ticker. Default:
    #: true for ``stocktwits`` and for ``reddit`` on a finance subreddit, else false.
    finance_community: bool | None = None


class RssSpec(_SourceBase):
    """An RSS or Atom feed; optionally follows each entry's link to extract the article."""

    kind: Literal["rss"]
    url: Annotated[str, Field(pattern=r"^https?://")]
    #: Follow each entry's link and extract the main text with trafilatura.
    fetch_articles: bool = False


class JsonMapping(_Model):
    """Dotted paths (``a.b.0.c``; ``*`` maps over a list) from a JSON item to document fields."""

    items: str
    id: str
    title: str | None = None
    body: str | None = None
    url: str | None = None
    #: Prefix joined to a relative ``url`` (e.g. Reddit permalinks).
    url_prefix: str = ""
    author: str | None = None
    published_at: str | None = None
    published_format: Literal["iso", "epoch_s", "epoch_ms"] = "iso"
    tickers: str | None = None


class JsonPagination(_Model):
    """Cursor and since-id paging.

    Pages are followed with ``cursor_param=<value at cursor_path>`` (or an
    incrementing ``page_param``) until an item at or below the stored
    high-water mark (``since_field``) appears, the cursor runs out, or
    ``max_pages`` is reached. ``since_param`` also sends the mark to the server
    (``{since}`` in ``since_template`` is replaced by it).
    """

    cursor_path: str | None = None
    cursor_param: str | None = None
    page_param: str | None = None
    first_page: int = 0
    since_field: str | None = None
    since_param: str | None = None
    since_template: str = "{since}"
    max_pages: int = Field(default=3, ge=1, le=100)

    @model_validator(mode="after")
    def _consistent(self) -> JsonPagination:
        if (self.cursor_path is None) != (self.cursor_param is None):
            raise ValueError("cursor_path and cursor_param go together")
        if self.cursor_param and self.page_param:
            raise ValueError("use cursor_param or page_param, not both")
        if self.since_param and not self.since_field:
            raise ValueError("since_param needs since_field (where the mark comes from)")
        return self


class JsonApiSpec(_SourceBase):
    """A generic JSON API with a field mapping and paging."""

    kind: Literal["json"]
    url: Annotated[str, Field(pattern=r"^https?://")]
    params: dict[str, str] = {}
    mapping: JsonMapping
    pagination: JsonPagination = JsonPagination()
    doc_kind: Literal["news", "comment"] = "comment"


class RedditSpec(_SourceBase):
    """Newest posts of a subreddit (``/r/<sub>/new.json``)."""

    kind: Literal["reddit"]
    subreddit: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{2,21}$")]
    base_url: Annotated[str, Field(pattern=r"^https?://")] = "https://www.reddit.com"
    doc_kind: Literal["news", "comment"] = "comment"
    max_pages: int = Field(default=2, ge=1, le=20)


class StockTwitsSpec(_SourceBase):
    """A StockTwits-style symbol stream (``/streams/symbol/<SYM>.json``)."""

    kind: Literal["stocktwits"]
    symbol: Annotated[str, Field(pattern=r"^[A-Z0-9.\-]{1,15}$")]
    base_url: Annotated[str, Field(pattern=r"^https?://")] = "https://api.stocktwits.com/api/2"
    doc_kind: Literal["news", "comment"] = "comment"
    max_pages: int = Field(default=2, ge=1, le=20)


class HNAlgoliaSpec(_SourceBase):
    """Hacker News stories and comments matching a query (Algolia search_by_date)."""

    kind: Literal["hn_algolia"]
    query: Annotated[str, Field(min_length=1, max_length=256)]
    #: Algolia ``tags`` filter, e.g. ``story`` or ``comment``.
    hn_tags: str = "story"
    base_url: Annotated[str, Field(pattern=r"^https?://")] = "https://hn.algolia.com"
    doc_kind: Literal["news", "comment"] = "comment"
    max_pages: int = Field(default=2, ge=1, le=20)


class FilesSpec(_SourceBase):
    """A local folder of JSONL, CSV, RSS and Atom files, polled for new or changed files."""

    kind: Literal["files"]
    path: Path
    patterns: list[str] = ["*.jsonl", "*.csv", "*.rss", "*.atom", "*.xml"]
    recursive: bool = False
    schedule: Schedule = Schedule(interval_s=30.0, jitter_s=0.0)


SourceSpec = Annotated[
    RssSpec | JsonApiSpec | RedditSpec | StockTwitsSpec | HNAlgoliaSpec | FilesSpec,
    Field(discriminator="kind"),
]


class SourcesFile(_Model):
    """The parsed sources file."""

    sources: list[SourceSpec]

    @model_validator(mode="after")
    def _unique(self) -> SourcesFile:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        return self

    def get(self, name: str) -> SourceSpec:
        """The source called ``name``; raises :class:`SourceConfigError` listing the names."""
        for spec in self.sources:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.sources) or "none"
        raise SourceConfigError(f"no source named {name!r} (known: {known})")

    @property
    def enabled(self) -> list[SourceSpec]:
        """The sources that are switched on."""
        return [s for s in self.sources if s.enabled]


def parse_sources(data: Any, *, origin: str = "sources") -> SourcesFile:
    """Validate an already-loaded sources document; defaults apply to every source."""
    if not isinstance(data, dict) or "sources" not in data:
        raise SourceConfigError(f"{origin}: expected a mapping with a 'sources' list")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise SourceConfigError(f"{origin}: 'defaults' must be a mapping")
    raw = data["sources"] or []
    if not isinstance(raw, list):
        raise SourceConfigError(f"{origin}: 'sources' must be a list")
    merged = [{**defaults, **s} if isinstance(s, dict) else s for s in raw]
    try:
        return SourcesFile.model_validate({"sources": merged})
    except ValidationError as exc:
        raise SourceConfigError(_describe(exc, merged, origin)) from exc


def load_sources(path: Path) -> SourcesFile:
    """Read and validate a YAML sources file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SourceConfigError(f"cannot read sources file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SourceConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_sources(data, origin=str(path))


def _describe(exc: ValidationError, raw: list[Any], origin: str) -> str:
    lines = []
    for err in exc.errors()[:8]:
        loc = list(err["loc"])
        where = origin
        if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
            item = raw[loc[1]] if loc[1] < len(raw) else {}
            name = item.get("name", "?") if isinstance(item, dict) else "?"
            kind = item.get("kind") if isinstance(item, dict) else None
            # Drop the discriminator tag pydantic inserts into the location.
            rest = [str(p) for p in loc[2:] if p != kind]
            where = f"{origin}: sources[{loc[1]}] ({name})" + (f".{'.'.join(rest)}" if rest else "")
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)
