"""Feed parsing: safe XML first, then feedparser; ids, dates and text normalised."""

from __future__ import annotations

import pytest

from ingest.exceptions import ParseError, UnsafeXMLError
from ingest.sources.rss import parse_feed
from tests.ingest import feeds


def test_rss_entries_keep_feed_ids_and_dates_in_utc() -> None:
    data = feeds.rss(
        [
            {
                "guid": "urn:a",
                "title": "First",
                "link": "http://example.test/a",
                "pubDate": "Mon, 05 Jan 2026 09:30:00 -0500",
            },
            {"title": "No guid", "link": "http://example.test/b"},
        ]
    )
    first, second = parse_feed(data)
    assert first.key == "urn:a"
    assert (
        first.published_at is not None
        and first.published_at.isoformat() == "2026-01-05T14:30:00+00:00"
    )
    assert second.key == "http://example.test/b" and second.published_at is None


def test_atom_entries_are_parsed_and_html_kept_for_cleaning() -> None:
    (entry,) = parse_feed(feeds.ATOM)
    assert entry.key == "urn:uuid:entry-1"
    assert entry.author == "A. Writer"
    assert entry.published_at is not None and entry.published_at.hour == 14
    assert "$GLBX" in entry.body


def test_billion_laughs_is_refused_before_any_expansion() -> None:
    # EntitiesForbidden is raised at the first <!ENTITY> declaration, so
    # nothing is ever expanded (feedparser never sees the document).
    with pytest.raises(UnsafeXMLError, match="EntitiesForbidden"):
        parse_feed(feeds.BILLION_LAUGHS)


def test_external_entity_is_refused() -> None:
    with pytest.raises(UnsafeXMLError):
        parse_feed(feeds.XXE)


def test_malformed_xml_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="not well-formed"):
        parse_feed(feeds.MALFORMED)


def test_well_formed_xml_that_is_not_a_feed_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_feed(b"<html><body>hello</body></html>")


def test_windows_1252_feed_is_decoded() -> None:
    title = "Soci\u00e9t\u00e9 G\u00e9n\u00e9rale \u2013 \u20ac1bn"
    xml = (
        '<?xml version="1.0" encoding="windows-1252"?><rss version="2.0"><channel><title>t</title>'
        f"<item><guid>g</guid><title>{title}</title></item></channel></rss>"
    ).encode("cp1252")
    (entry,) = parse_feed(xml)
    assert entry.title == title
