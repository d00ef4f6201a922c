"""Fixture feeds, pages and API payloads written for these tests."""

from __future__ import annotations

import json

WIRE_STORY = (
    "Acme Corp shares fell 12% on Tuesday after the company cut its full-year revenue "
    "forecast, citing weaker demand in Europe and Asia and higher input costs. Chief "
    "executive Jane Roe said the group would cut 1,200 jobs and review its chip unit."
)


def rss(items: list[dict[str, str]], *, title: str = "Fixture wire") -> bytes:
    """An RSS 2.0 document with ``items`` (guid, title, link, description, pubDate)."""
    parts = []
    for it in items:
        fields = "".join(f"<{k}>{v}</{k}>" for k, v in it.items())
        parts.append(f"<item>{fields}</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{title}</title><link>http://example.test/</link>"
        f"<description>fixture</description>{''.join(parts)}</channel></rss>"
    ).encode()


ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom fixture</title><id>urn:feed:1</id><updated>2026-01-05T10:00:00Z</updated>
  <entry>
    <id>urn:uuid:entry-1</id><title>Globex beats estimates</title>
    <link href="http://example.test/globex?utm_source=rss&amp;id=7"/>
    <updated>2026-01-05T09:30:00-05:00</updated>
    <summary type="html">&lt;p&gt;Globex Inc &lt;b&gt;beat&lt;/b&gt; estimates;
      $GLBX up 4%&lt;/p&gt;</summary>
    <author><name>A. Writer</name></author>
  </entry>
</feed>
"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title></channel></rss>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>&x;</title></channel></rss>
"""

MALFORMED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>broken</channel>"


def reddit_listing(posts: list[dict[str, object]], after: str | None) -> bytes:
    """A Reddit ``/r/<sub>/new.json`` listing."""
    children = [{"kind": "t3", "data": p} for p in posts]
    return json.dumps({"kind": "Listing", "data": {"after": after, "children": children}}).encode()


def reddit_post(n: int, created: int, title: str, text: str = "") -> dict[str, object]:
    return {
        "id": f"p{n}",
        "name": f"t3_p{n}",
        "title": title,
        "selftext": text,
        "permalink": f"/r/stocks/comments/p{n}/x/",
        "author": f"user{n}",
        "created_utc": float(created),
    }


def stocktwits(messages: list[dict[str, object]], max_cursor: int | None) -> bytes:
    """A StockTwits-style ``/streams/symbol/<SYM>.json`` payload."""
    return json.dumps(
        {
            "symbol": {"symbol": "AAPL"},
            "cursor": {"more": max_cursor is not None, "max": max_cursor, "since": None},
            "messages": messages,
        }
    ).encode()


def stocktwit(n: int, body: str, symbols: list[str]) -> dict[str, object]:
    return {
        "id": n,
        "body": body,
        "created_at": f"2026-01-05T1{n % 10}:00:00Z",
        "user": {"username": f"trader{n}"},
        "symbols": [{"symbol": s} for s in symbols],
    }


def hn_page(hits: list[dict[str, object]], page: int, pages: int) -> bytes:
    """An HN Algolia ``search_by_date`` page."""
    return json.dumps({"hits": hits, "page": page, "nbPages": pages, "hitsPerPage": 2}).encode()


def hn_hit(n: int, created: int, title: str) -> dict[str, object]:
    return {
        "objectID": str(n),
        "title": title,
        "url": f"https://example.test/hn/{n}",
        "author": f"hn{n}",
        "created_at_i": created,
        "story_text": None,
    }
