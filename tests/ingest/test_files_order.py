"""The local-files source emits in event-time order across files (issue 18, finding 1).

It used to read its files one after another, so a back-fill split into files
(and an RSS file, newest first) reached the alerts service hours out of order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from finsentinel.demo_corpus import DEMO_DATA_DIR
from ingest.config import parse_sources
from ingest.http import Fetcher
from ingest.settings import IngestSettings
from ingest.sources import FetchContext, build_source
from ingest.sources.base import Candidate
from tests.ingest import feeds

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def ctx(settings: IngestSettings) -> Iterator[FetchContext]:
    fetcher = Fetcher(settings, sleep=lambda _s: None)
    yield FetchContext(fetcher, settings, lambda: datetime(2026, 1, 6, tzinfo=UTC))
    fetcher.close()


def _source(folder: Path, **extra: Any) -> Any:
    spec = {"name": "files", "kind": "files", "path": str(folder), **extra}
    return build_source(parse_sources({"sources": [spec]}).sources[0])


def _jsonl(path: Path, minutes: list[int]) -> None:
    rows = [
        {"id": f"{path.stem}-{m}", "title": f"row {m}", "published_at": _at(m).isoformat()}
        for m in minutes
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def _drain(source: Any, ctx: FetchContext, state: dict[str, Any]) -> tuple[list[Any], Any]:
    out: list[Any] = []
    for _ in range(100):
        result = source.fetch(ctx, state)
        out += result.candidates
        state = result.state
        if not result.more:
            return out, state
    raise AssertionError("the source never drained")


def test_files_are_merged_in_event_time_across_passes(tmp_path: Path, ctx: FetchContext) -> None:
    _jsonl(tmp_path / "a.jsonl", [0, 30, 60, 90])
    _jsonl(tmp_path / "b.jsonl", [10, 20, 70])
    (tmp_path / "c.rss").write_bytes(  # a feed lists its newest item first
        feeds.rss(
            [
                {"guid": "c-80", "title": "feed 80", "pubDate": "Mon, 05 Jan 2026 10:20:00 GMT"},
                {"guid": "c-40", "title": "feed 40", "pubDate": "Mon, 05 Jan 2026 09:40:00 GMT"},
            ]
        )
    )
    source = _source(tmp_path, max_items_per_pass=3)
    got, _ = _drain(source, ctx, {})
    times = [c.published_at for c in got]
    assert times == sorted(times) and len(times) == 9
    assert [c.key for c in got][:4] == ["a-0", "b-10", "b-20", "a-30"]


def test_a_restart_resumes_the_same_order_without_repeats(
    tmp_path: Path, ctx: FetchContext
) -> None:
    _jsonl(tmp_path / "a.jsonl", [50, 0, 40, 10])  # unsorted inside the file too
    _jsonl(tmp_path / "b.jsonl", [30, 20])
    first = _source(tmp_path, max_items_per_pass=2).fetch(ctx, {})
    assert [c.key for c in first.candidates] == ["a-0", "a-10"] and first.more
    rest, state = _drain(_source(tmp_path, max_items_per_pass=2), ctx, first.state)  # no cache
    assert [c.key for c in rest] == ["b-20", "b-30", "a-40", "a-50"]
    assert all(entry["done"] == -1 for entry in state["files"].values())
    assert _source(tmp_path).fetch(ctx, state).candidates == []


def test_a_cursor_from_file_order_is_honoured(tmp_path: Path, ctx: FetchContext) -> None:
    """A cursor written before event-time ordering counted records in file order."""
    _jsonl(tmp_path / "a.jsonl", [30, 0, 20, 10])
    stat = (tmp_path / "a.jsonl").stat()
    legacy = {"files": {"a.jsonl": {"mtime_ns": stat.st_mtime_ns, "size": stat.st_size, "done": 2}}}
    got, _ = _drain(_source(tmp_path), ctx, legacy)
    assert [c.key for c in got] == ["a-10", "a-20"]  # the two not done, oldest first


def test_undated_rows_come_last_and_rejects_do_not_count_as_events(
    tmp_path: Path, ctx: FetchContext
) -> None:
    (tmp_path / "a.jsonl").write_text(
        '{"id": "undated", "title": "no time"}\n{broken\n'
        + json.dumps({"id": "dated", "title": "x", "published_at": _at(5).isoformat()})
        + "\n"
    )
    result = _source(tmp_path).fetch(ctx, {})
    assert [c.key for c in result.candidates] == ["dated", "undated"]
    assert [r.reason for r in result.rejected] == ["malformed_json"]


def test_the_demo_corpus_leaves_in_event_time_order(tmp_path: Path, ctx: FetchContext) -> None:
    got, _ = _drain(_source(DEMO_DATA_DIR, max_items_per_pass=100), ctx, {})
    dated = [c.published_at for c in got if isinstance(c, Candidate) and c.published_at]
    assert len(dated) > 400
    assert dated == sorted(dated)
