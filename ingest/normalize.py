"""Canonical URLs, clean text, UTC timestamps and stable document ids.

>>> canonical_url("HTTPS://News.Example.com:443/a/b?utm_source=x&b=2&a=1&fbclid=z#top")
'https://news.example.com/a/b?a=1&b=2'
>>> doc_id("wire", "urn:story:1") == doc_id("wire", "urn:story:1")
True
>>> clean_text("<p>Shares  <b>rose</b>&nbsp;3%</p>\\n<p>today</p>")
'Shares rose 3% today'
>>> to_utc("2026-01-05T09:30:00-05:00").isoformat()
'2026-01-05T14:30:00+00:00'
"""

from __future__ import annotations

import calendar
import hashlib
import re
import time
import unicodedata
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["canonical_url", "clean_text", "content_hash", "doc_id", "to_utc"]

_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "hsa_", "_hs")
_TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "igshid",
        "mkt_tok",
        "cmpid",
        "ocid",
        "ref_src",
        "ref_url",
        "smid",
        "sr_share",
        "spm",
        "_ga",
        "guccounter",
        "guce_referrer",
        "guce_referrer_sig",
        "taid",
        "ncid",
        "s_cid",
        "xtor",
        "at_medium",
        "at_campaign",
        "__twitter_impression",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SPACE = re.compile(r"\s+")


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port, fragment or tracking params, sorted query."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.port and parts.port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _TRACKING_PARAMS and not k.lower().startswith(_TRACKING_PREFIXES)
    )
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, urlencode(query), ""))


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset({"p", "br", "div", "li", "h1", "h2", "h3", "h4", "tr", "blockquote"})
    _SKIP = frozenset({"script", "style", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def clean_text(value: str | None) -> str:
    """Plain text from HTML or text: tags dropped, entities decoded, whitespace collapsed."""
    if not value:
        return ""
    if "<" in value or "&" in value:
        parser = _TextExtractor()
        parser.feed(value)
        parser.close()
        value = "".join(parser.parts)
    value = unicodedata.normalize("NFC", value).replace("\u00a0", " ")
    value = "".join(ch for ch in value if ch in "\t\n" or unicodedata.category(ch)[0] != "C")
    return _SPACE.sub(" ", value).strip()


def to_utc(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime from ISO text, epoch seconds, struct_time or datetime.

    Naive values are taken as UTC. Unparseable values give ``None``.
    """
    if value is None or value == "":
        return None
    try:
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, time.struct_time):
            parsed = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parsed = datetime.fromtimestamp(float(value), tz=UTC)
        elif isinstance(value, str):
            text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
            parsed = datetime.fromisoformat(text)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def doc_id(source: str, key: str) -> str:
    """Stable document id: a hash of the source name and its own id for the item."""
    digest = hashlib.blake2b(f"{source}\x1f{key}".encode(), digest_size=16).hexdigest()
    return f"{source[:64]}:{digest}"


def content_hash(title: str, body: str) -> str:
    """Hash of the normalised text, for exact duplicates across sources.

    >>> content_hash("Acme  beats", "Q3") == content_hash("acme beats", " q3 ")
    True
    """
    text = _SPACE.sub(" ", f"{title}\n{body}".casefold()).strip()
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
