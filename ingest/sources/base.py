"""The one interface every source implements.

A source turns one *pass* (fetch, parse) into a :class:`FetchResult`:
candidate documents, records it had to reject, and its new cursor state. The
pipeline normalises, deduplicates and produces the candidates; the state is
saved only after the broker acknowledged every document of the pass, so a
crash never skips anything (at worst a pass is repeated and dedup absorbs it).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.config import SourceSpec
from ingest.http import Fetcher
from ingest.netguard import AllowPrivate
from ingest.settings import IngestSettings

__all__ = ["Candidate", "FetchContext", "FetchResult", "Rejected", "Source"]


@dataclass(frozen=True)
class Candidate:
    """An item as a source found it, before normalisation."""

    #: The source's own id for the item (feed entry id, API id, row id, link).
    key: str
    title: str = ""
    body: str = ""
    url: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    #: Tickers the source itself states (API symbols, a ``tickers`` column).
    tickers: tuple[str, ...] = ()
    #: ``news`` or ``comment`` when the item says so; else the source's ``doc_kind``.
    kind: str | None = None
    #: Publisher name when the item names one (local files); else the source name.
    source: str | None = None
    tags: tuple[str, ...] = ()
    #: The original record, kept for a dead letter if the item is rejected.
    raw: bytes = b""


@dataclass(frozen=True)
class Rejected:
    """A record that cannot become a document; it goes to the dead-letter topic."""

    reason: str
    detail: str
    raw: bytes


@dataclass
class FetchResult:
    """What one pass found."""

    candidates: list[Candidate] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    #: Cursor state to save once everything in this result is acknowledged.
    state: dict[str, Any] = field(default_factory=dict)
    not_modified: bool = False
    #: True when the pass stopped at ``max_items_per_pass`` and more is waiting.
    more: bool = False


@dataclass(frozen=True)
class FetchContext:
    """Shared services a source uses during a pass."""

    fetcher: Fetcher
    settings: IngestSettings
    clock: Callable[[], datetime]


class Source(abc.ABC):
    """A configured source; subclasses implement :meth:`fetch`."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        """The source's name from the sources file."""
        return self.spec.name

    @abc.abstractmethod
    def fetch(self, ctx: FetchContext, state: Mapping[str, Any]) -> FetchResult:
        """Run one pass from cursor ``state``; raise an ``IngestError`` if the pass fails."""

    def request_options(self) -> dict[str, Any]:
        """Keyword arguments for :meth:`Fetcher.get`: headers, credentials, address policy."""
        headers = dict(self.spec.headers)
        params: dict[str, str] = {}
        secret_headers: tuple[str, ...] = ()
        creds = self.spec.credentials
        if creds is not None:
            secret = creds.secret().get_secret_value()
            if creds.header:
                headers[creds.header] = secret
                secret_headers = (creds.header,)
            elif creds.query_param:
                params[creds.query_param] = secret
        return {
            "headers": headers,
            "params": params,
            "secret_headers": secret_headers,
            "allow_private": self.address_policy(),
        }

    def address_policy(self) -> AllowPrivate:
        """The source's ``allow_private_addresses`` in the fetcher's form."""
        allow = self.spec.allow_private_addresses
        return allow if isinstance(allow, bool) else tuple(allow)
