"""Canonical URLs, text cleaning, timestamps, ids."""

from __future__ import annotations

import pytest

from ingest.normalize import canonical_url, clean_text, doc_id, to_utc


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("HTTP://Example.COM/a?b=2&a=1#frag", "http://example.com/a?a=1&b=2"),
        ("https://x.test:443/p?utm_source=t&utm_medium=rss&id=9", "https://x.test/p?id=9"),
        ("https://x.test/p?fbclid=abc&gclid=def&msclkid=1", "https://x.test/p"),
        ("https://x.test:8443", "https://x.test:8443/"),
        ("https://x.test/p?q=a+b&q=c", "https://x.test/p?q=a+b&q=c"),
    ],
)
def test_canonical_url(raw: str, canonical: str) -> None:
    assert canonical_url(raw) == canonical


def test_clean_text_drops_scripts_and_entities() -> None:
    html = "<div>Profit &amp; loss<script>alert(1)</script><br>rose&#160;5%</div>"
    assert clean_text(html) == "Profit & loss rose 5%"


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("2026-01-05T14:30:00Z", "2026-01-05T14:30:00+00:00"),
        ("2026-01-05T15:30:00+01:00", "2026-01-05T14:30:00+00:00"),
        ("2026-01-05 14:30:00", "2026-01-05T14:30:00+00:00"),
        (1767623400, "2026-01-05T14:30:00+00:00"),
    ],
)
def test_to_utc(value: object, iso: str) -> None:
    parsed = to_utc(value)
    assert parsed is not None and parsed.isoformat() == iso


def test_unparseable_dates_are_none() -> None:
    assert to_utc("yesterday") is None and to_utc(None) is None


def test_doc_id_is_stable_and_source_scoped() -> None:
    assert doc_id("a", "k") == doc_id("a", "k") != doc_id("b", "k")
