"""Sources file validation and the JSON/Reddit/StockTwits/HN/local-file sources."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.config import load_sources, parse_sources
from ingest.exceptions import SourceConfigError
from ingest.http import Fetcher
from ingest.robots import RobotsCache
from ingest.settings import IngestSettings
from ingest.sources import FetchContext, Rejected, build_source
from tests.ingest import feeds
from tests.ingest.conftest import FixtureServer, Reply

EXAMPLE = Path(__file__).parents[2] / "ingest" / "sources.example.yaml"


@pytest.fixture
def ctx(settings: IngestSettings) -> Iterator[FetchContext]:
    fetcher = Fetcher(settings, sleep=lambda _s: None)
    fetcher.robots = RobotsCache(fetcher, agent=settings.user_agent_product, ttl_s=60).check
    yield FetchContext(fetcher, settings, lambda: datetime(2026, 1, 6, tzinfo=UTC))
    fetcher.close()


def one(spec: dict[str, object]):  # type: ignore[no-untyped-def]
    return build_source(parse_sources({"sources": [spec]}).sources[0])


# -- sources file -------------------------------------------------------------


def test_example_sources_file_is_valid() -> None:
    parsed = load_sources(EXAMPLE)
    kinds = {s.kind for s in parsed.sources}
    assert {"rss", "reddit", "stocktwits", "hn_algolia", "json", "files"} <= kinds


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "a", "kind": "rss", "url": "ftp://x"}, r"sources\[0\] \(a\)\.url"),
        ({"name": "a", "kind": "rss"}, r"\(a\)\.url: Field required"),
        ({"name": "Bad Name", "kind": "rss", "url": "http://x"}, r"name: String should match"),
        ({"name": "a", "kind": "podcast"}, "does not match any of the expected tags"),
        (
            {"name": "a", "kind": "reddit", "subreddit": "s", "schedule": {"cron": "* * * * 1"}},
            "day-of-week with names",
        ),
        ({"name": "a", "kind": "reddit", "subreddit": "stocks", "surprise": 1}, "surprise"),
    ],
)
def test_invalid_sources_are_reported_with_name_and_field(
    spec: dict[str, object], message: str
) -> None:
    with pytest.raises(SourceConfigError, match=message):
        parse_sources({"sources": [spec]})


def test_duplicate_names_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "defaults: {tags: [desk-a]}\nsources:\n"
        "  - {name: x, kind: reddit, subreddit: stocks}\n"
        "  - {name: x, kind: reddit, subreddit: investing}\n"
    )
    with pytest.raises(SourceConfigError, match="repeated: x"):
        load_sources(path)
    path.write_text(
        "defaults: {tags: [desk-a]}\nsources:\n  - {name: x, kind: reddit, subreddit: s1}\n"
    )
    assert load_sources(path).sources[0].tags == ["desk-a"]


def test_credentials_come_from_the_environment(
    server: FixtureServer, ctx: FetchContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.route("/api", Reply(200, json.dumps({"items": []}).encode()))
    source = one(
        {
            "name": "api",
            "kind": "json",
            "url": server.url("/api"),
            "allow_private_addresses": True,
            "credentials": {"env": "FIXTURE_TOKEN", "prefix": "Bearer "},
            "mapping": {"items": "items", "id": "id"},
        }
    )
    monkeypatch.delenv("FIXTURE_TOKEN", raising=False)
    with pytest.raises(SourceConfigError, match="FIXTURE_TOKEN"):
        source.fetch(ctx, {})
    monkeypatch.setenv("FIXTURE_TOKEN", "s3cret")
    source.fetch(ctx, {})
    assert server.requests[-1][1]["authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(source.spec)


# -- RSS ----------------------------------------------------------------------


def test_rss_conditional_get_with_etag_and_last_modified(
    server: FixtureServer, ctx: FetchContext
) -> None:
    body = feeds.rss([{"guid": "g1", "title": "One"}])
    lm = "Mon, 05 Jan 2026 10:00:00 GMT"

    def feed(_p: str, _q: object, headers: dict[str, str]) -> Reply:
        if headers.get("if-none-match") == '"v1"' and headers.get("if-modified-since") == lm:
            return Reply(304)
        return Reply(200, body, {"ETag": '"v1"', "Last-Modified": lm})

    server.route("/feed.xml", feed)
    source = one(
        {
            "name": "w",
            "kind": "rss",
            "url": server.url("/feed.xml"),
            "allow_private_addresses": True,
        }
    )
    first = source.fetch(ctx, {})
    assert [c.key for c in first.candidates] == ["g1"]
    second = source.fetch(ctx, first.state)
    assert second.not_modified and second.candidates == [] and second.state == first.state


def test_rss_follows_links_for_article_text(server: FixtureServer, ctx: FetchContext) -> None:
    page = (
        "<html><head><meta charset='windows-1252'><title>x</title></head><body><nav>Menu</nav>"
        "<article><h1>Acme</h1><p>"
        + "Acme’s profit fell sharply in the quarter. " * 10
        + "</p></article></body></html>"
    ).encode("cp1252")
    server.route("/story", Reply(200, page, {"Content-Type": "text/html"}))
    server.route(
        "/feed.xml",
        Reply(
            200,
            feeds.rss(
                [
                    {
                        "guid": "s1",
                        "title": "Acme",
                        "link": server.url("/story"),
                        "description": "short",
                    }
                ]
            ),
        ),
    )
    source = one(
        {
            "name": "w",
            "kind": "rss",
            "url": server.url("/feed.xml"),
            "allow_private_addresses": True,
            "fetch_articles": True,
        }
    )
    (cand,) = source.fetch(ctx, {}).candidates
    assert "Acme’s profit fell sharply" in cand.body and "Menu" not in cand.body


# -- JSON presets ---------------------------------------------------------------


def test_reddit_preset_pages_with_after_and_stops_at_the_mark(
    server: FixtureServer, ctx: FetchContext
) -> None:
    page1 = feeds.reddit_listing(
        [feeds.reddit_post(3, 300, "TSLA to the moon"), feeds.reddit_post(2, 200, "Apple shares")],
        after="t3_p2",
    )
    page2 = feeds.reddit_listing([feeds.reddit_post(1, 100, "old post")], after=None)

    def listing(_p: str, query: dict[str, list[str]], _h: object) -> Reply:
        return Reply(200, page2 if query.get("after") == ["t3_p2"] else page1)

    server.route("/r/stocks/new.json", listing)
    source = one(
        {
            "name": "r",
            "kind": "reddit",
            "subreddit": "stocks",
            "base_url": server.base,
            "allow_private_addresses": True,
        }
    )
    result = source.fetch(ctx, {})
    assert [c.key for c in result.candidates] == ["t3_p3", "t3_p2", "t3_p1"]
    assert result.candidates[0].url == server.url("/r/stocks/comments/p3/x/")
    assert result.candidates[0].published_at == datetime.fromtimestamp(300, UTC)
    assert result.state == {"since": 300.0}
    again = source.fetch(ctx, result.state)  # nothing newer: only the item at the mark
    assert [c.key for c in again.candidates] == ["t3_p3"]
    assert server.hits["/r/stocks/new.json"] == 3


def test_stocktwits_preset_uses_since_and_max_cursor(
    server: FixtureServer, ctx: FetchContext
) -> None:
    def stream(_p: str, query: dict[str, list[str]], _h: object) -> Reply:
        if query.get("since") == ["11"]:
            return Reply(200, feeds.stocktwits([feeds.stocktwit(12, "$AAPL new", ["AAPL"])], None))
        if query.get("max") == ["10"]:
            return Reply(200, feeds.stocktwits([feeds.stocktwit(10, "older", ["AAPL"])], None))
        return Reply(200, feeds.stocktwits([feeds.stocktwit(11, "$AAPL ripping", ["AAPL"])], 10))

    server.route("/api/2/streams/symbol/AAPL.json", stream)
    source = one(
        {
            "name": "st",
            "kind": "stocktwits",
            "symbol": "AAPL",
            "base_url": server.url("/api/2"),
            "allow_private_addresses": True,
        }
    )
    result = source.fetch(ctx, {})
    assert [c.key for c in result.candidates] == ["11", "10"]
    assert result.candidates[0].tickers == ("AAPL",) and result.state == {"since": 11}
    newer = source.fetch(ctx, result.state)
    assert [c.key for c in newer.candidates] == ["12"] and newer.state == {"since": 12}


def test_hn_algolia_preset_pages_by_number(server: FixtureServer, ctx: FetchContext) -> None:
    pages = {
        "0": feeds.hn_page(
            [feeds.hn_hit(5, 500, "Nvidia earnings"), feeds.hn_hit(4, 400, "b")], 0, 2
        ),
        "1": feeds.hn_page([feeds.hn_hit(3, 300, "c")], 1, 2),
        "2": feeds.hn_page([], 2, 2),
    }

    def search(_p: str, query: dict[str, list[str]], _h: object) -> Reply:
        assert query["query"] == ["earnings"]
        return Reply(200, pages[query["page"][0]])

    server.route("/api/v1/search_by_date", search)
    source = one(
        {
            "name": "hn",
            "kind": "hn_algolia",
            "query": "earnings",
            "base_url": server.base,
            "allow_private_addresses": True,
            "max_pages": 5,
        }
    )
    result = source.fetch(ctx, {})
    assert [c.key for c in result.candidates] == ["5", "4", "3"] and result.state == {"since": 500}


def test_json_items_without_id_or_with_bad_dates_are_rejected(
    server: FixtureServer, ctx: FetchContext
) -> None:
    items = [
        {"id": 1, "t": "ok", "ts": "2026-01-05T10:00:00Z"},
        {"t": "no id"},
        {"id": 3, "t": "bad date", "ts": "yesterday"},
        "not an object",
    ]
    server.route("/api", Reply(200, json.dumps({"data": items}).encode()))
    source = one(
        {
            "name": "api",
            "kind": "json",
            "url": server.url("/api"),
            "allow_private_addresses": True,
            "mapping": {"items": "data", "id": "id", "title": "t", "published_at": "ts"},
        }
    )
    result = source.fetch(ctx, {})
    assert [c.key for c in result.candidates] == ["1"]
    assert [r.reason for r in result.rejected] == ["schema_violation"] * 3


# -- local files -------------------------------------------------------------


def test_local_files_jsonl_csv_and_rss_with_processed_state(
    tmp_path: Path, ctx: FetchContext
) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.jsonl").write_text(
        json.dumps(
            {
                "id": "n1",
                "title": "Acme up",
                "kind": "news",
                "source": "wire-x",
                "published_at": "2026-01-05T10:00:00Z",
                "tickers": ["ACME"],
            }
        )
        + "\n"
        + "{not json\n"
        + json.dumps({"text": "comment body", "kind": "comment"})
        + "\n",
        encoding="utf-8",
    )
    (folder / "b.csv").write_text("title,body,url\nCSV row,body,https://x.test/1\n,,\n")
    (folder / "c.rss").write_bytes(feeds.rss([{"guid": "r1", "title": "From a feed file"}]))
    source = one({"name": "local", "kind": "files", "path": str(folder)})
    first = source.fetch(ctx, {})
    assert {c.title or c.body for c in first.candidates} == {
        "Acme up",
        "comment body",
        "CSV row",
        "From a feed file",
    }
    assert sorted(r.reason for r in first.rejected) == ["empty_text", "malformed_json"]
    assert source.fetch(ctx, first.state).candidates == []  # unchanged files are skipped
    (folder / "b.csv").write_text("title,body\nCSV row,body\nSecond row,more\n")
    os.utime(folder / "b.csv", ns=(1, 2_000_000_000_000_000_000))
    changed = source.fetch(ctx, first.state)
    assert [c.title for c in changed.candidates] == ["CSV row", "Second row"]


def test_large_files_are_spread_over_passes(tmp_path: Path, ctx: FetchContext) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "rows.jsonl").write_text(
        "".join(json.dumps({"id": str(i), "title": f"row {i}"}) + "\n" for i in range(5))
    )
    source = one({"name": "big", "kind": "files", "path": str(folder), "max_items_per_pass": 2})
    state: dict[str, object] = {}
    keys: list[str] = []
    for _ in range(3):
        result = source.fetch(ctx, state)
        keys += [c.key for c in result.candidates]
        state = result.state
    assert keys == ["0", "1", "2", "3", "4"] and not result.more


def test_missing_folder_is_a_config_error(tmp_path: Path, ctx: FetchContext) -> None:
    source = one({"name": "x", "kind": "files", "path": str(tmp_path / "nope")})
    with pytest.raises(SourceConfigError, match="does not exist"):
        source.fetch(ctx, {})


def test_rejected_rows_keep_their_original_bytes(tmp_path: Path, ctx: FetchContext) -> None:
    (tmp_path / "x.jsonl").write_text('{"title": "ok"}\n[1, 2]\n')
    result = one({"name": "x", "kind": "files", "path": str(tmp_path)}).fetch(ctx, {})
    (rej,) = result.rejected
    assert isinstance(rej, Rejected) and rej.raw == b"[1, 2]"


def test_relative_folder_with_a_feed_file(
    tmp_path: Path, ctx: FetchContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "news.rss").write_bytes(feeds.rss([{"guid": "x", "title": "Feed row"}]))
    monkeypatch.chdir(tmp_path)
    result = one({"name": "rel", "kind": "files", "path": "corpus"}).fetch(ctx, {})
    assert [c.title for c in result.candidates] == ["Feed row"]


def test_example_documents_base_url_for_every_preset_with_a_local_mirror() -> None:
    from ingest.presets import expand

    text = EXAMPLE.read_text(encoding="utf-8")
    mirrors = {s.kind: expand(s) for s in load_sources(EXAMPLE).sources if "mirror" in s.name}
    assert set(mirrors) == {"reddit", "stocktwits", "hn_algolia"}
    for kind, default in [
        ("reddit", "https://www.reddit.com"),
        ("stocktwits", "https://api.stocktwits.com/api/2"),
        ("hn_algolia", "https://hn.algolia.com"),
    ]:
        assert f"base_url: {default}" in text, kind
        assert "127.0.0.1" in mirrors[kind].url or "mirror.internal" in mirrors[kind].url
    assert mirrors["reddit"].url == "http://127.0.0.1:8081/r/wallstreetbets/new.json"


@pytest.mark.parametrize(
    ("spec", "community"),
    [
        ({"kind": "reddit", "subreddit": "wallstreetbets"}, True),
        ({"kind": "reddit", "subreddit": "movies"}, False),
        ({"kind": "reddit", "subreddit": "movies", "finance_community": True}, True),
        ({"kind": "stocktwits", "symbol": "KO"}, True),
        ({"kind": "hn_algolia", "query": "earnings"}, False),
        ({"kind": "rss", "url": "http://x.test/f.xml"}, None),
    ],
)
def test_finance_community_defaults_by_preset(spec: dict[str, object], community: object) -> None:
    from ingest.presets import expand

    (parsed,) = parse_sources({"sources": [{"name": "s", **spec}]}).sources
    assert expand(parsed).finance_community is community
