"""Dedup store: exact, near, known; persistence across restarts; bounded size; novelty."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ingest.config import parse_sources
from ingest.dedup import DedupStore, Seen
from ingest.documents import Built, build_document
from ingest.entities import EntityExtractor
from ingest.fingerprint import minhash
from ingest.normalize import content_hash
from ingest.sources.base import Candidate
from tests.ingest.feeds import WIRE_STORY


def store(path: Path | None, now: list[float], **kw: float) -> DedupStore:
    opts = {
        "near_min_similarity": 0.6,
        "near_window_s": 3600.0,
        "retention_s": 86400.0,
        "max_entries": 100,
    } | kw
    return DedupStore(path, clock=lambda: now[0], **opts)  # type: ignore[arg-type]


def seen(i: str, text: str, url: str | None = None) -> Seen:
    return Seen(i, content_hash("", text), url, minhash(text))


def test_verdicts(tmp_path: Path) -> None:
    now = [1000.0]
    s = store(tmp_path / "d.db", now)
    s.mark_seen([seen("a", WIRE_STORY, "https://x.test/a")])
    assert s.classify(seen("a", "other")).kind == "known"
    assert s.classify(seen("b", WIRE_STORY.upper())).kind == "exact"  # same normalised text
    assert s.classify(seen("c", "different", "https://x.test/a")).kind == "exact"  # same URL
    near = s.classify(seen("d", "UPDATE 2-" + WIRE_STORY + " (Reporting by A. B.)"))
    assert near.kind == "near" and near.match_id == "a" and near.novelty < 0.4
    new = s.classify(seen("e", "Central bank holds rates, signals patience on cuts this year"))
    assert new.kind == "new" and new.novelty > 0.8
    s.close()


def test_state_survives_restart(tmp_path: Path) -> None:
    now = [1000.0]
    s = store(tmp_path / "d.db", now)
    s.mark_seen([seen("a", WIRE_STORY)])
    s.add_copies("a", 2)
    s.close()
    again = store(tmp_path / "d.db", now)
    assert again.classify(seen("a", WIRE_STORY)).kind == "known"
    assert again.classify(seen("z", "Reuters - " + WIRE_STORY)).kind == "near"
    assert again.copies("a") == 3
    again.close()


def test_near_window_and_retention_are_bounded(tmp_path: Path) -> None:
    now = [0.0]
    s = store(tmp_path / "d.db", now, near_window_s=100.0, retention_s=1000.0, max_entries=100)
    s.mark_seen([seen("a", WIRE_STORY)])
    now[0] = 200.0  # outside the near window, inside retention
    assert s.classify(seen("b", "UPDATE 1-" + WIRE_STORY)).kind == "new"
    assert s.classify(seen("a", WIRE_STORY)).kind == "known"
    now[0] = 2000.0
    assert s.evict() == 1
    assert s.classify(seen("a", WIRE_STORY)).kind == "new"
    s.close()


def test_count_bound_evicts_oldest_first() -> None:
    now = [0.0]
    s = store(None, now, max_entries=100)
    for i in range(150):
        now[0] = float(i)
        s.mark_seen([seen(f"id{i}", f"story number {i} about topic {i * 7}")])
    s.evict()
    assert len(s) == 100
    assert s.classify(seen("id0", "x")).kind == "new"
    assert s.classify(seen("id149", "x")).kind == "known"
    s.close()


def test_short_texts_are_deduplicated_exactly_only() -> None:
    now = [0.0]
    s = store(None, now)
    a = "Solvane Energy to hold annual shareholder meeting on Dec. 3"
    b = "Solvane Energy to hold annual shareholder meeting in March"
    s.mark_seen([Seen("a", content_hash("", a), None, minhash(a), near_eligible=False)])
    verdict = s.classify(Seen("b", content_hash("", b), None, minhash(b), near_eligible=False))
    assert verdict.kind == "new" and verdict.novelty < 0.5  # similar, so not novel, but kept
    assert s.classify(Seen("c", content_hash("", a), None, minhash(a), False)).kind == "exact"
    s.close()


def test_identical_text_outside_the_window_is_a_new_story() -> None:
    now = [0.0]
    s = store(None, now, near_window_s=100.0)
    headline = "Oil steady ahead of OPEC+ meeting"
    s.mark_seen([seen("monday", headline)])
    now[0] = 50.0
    assert s.classify(seen("monday-copy", headline)).kind == "exact"
    now[0] = 500.0
    assert s.classify(seen("next-week", headline)).kind == "new"
    s.close()


def test_documents_flag_short_texts() -> None:
    spec = parse_sources({"sources": [{"name": "x", "kind": "files", "path": "."}]}).sources[0]
    now = datetime(2026, 1, 5, tzinfo=UTC)
    ex = EntityExtractor.default()
    short = build_document(Candidate("1", title="Acme to report results"), spec, ex, now)
    long = build_document(Candidate("2", body=WIRE_STORY), spec, ex, now)
    assert isinstance(short, Built) and not short.seen.near_eligible
    assert isinstance(long, Built) and long.seen.near_eligible


def test_window_grows_and_compacts_without_losing_track_of_ids() -> None:
    now = [0.0]
    s = store(None, now, near_window_s=1000.0, retention_s=10_000.0, max_entries=100_000)
    texts = {}
    for batch in range(30):  # 3,000 signatures: past the initial capacity, twice
        now[0] = batch * 100.0
        items = []
        for k in range(100):
            i = batch * 100 + k
            texts[i] = f"story {i} " + " ".join(f"t{i}w{j}" for j in range(25))
            items.append(seen(f"id{i}", texts[i]))
        s.mark_seen(items)
        s.evict()
    # Now 2900, window 1000 s: batches from time 1900 (ids 1900+) are inside.
    for i in (2950, 2100, 1900, 1899):
        verdict = s.classify(seen(f"copy{i}", "UPDATE 1-" + texts[i]))
        expected = ("near", f"id{i}") if i >= 1900 else ("new", None)
        assert (verdict.kind, verdict.match_id) == expected
    s.close()


def test_outlets_keep_first_seen_order_survive_restart_and_are_evicted(tmp_path: Path) -> None:
    now = [0.0]
    s = store(tmp_path / "d.db", now, retention_s=1000.0)
    s.mark_seen([seen("a", WIRE_STORY)])
    s.add_outlets("a", ["wire", "paper"])
    s.add_outlets("a", ["paper", "blog", "wire"])  # a re-sent update adds nothing twice
    assert s.outlets("a") == ["wire", "paper", "blog"] and s.outlets("zz") == []
    s.close()
    again = store(tmp_path / "d.db", now, retention_s=1000.0)
    assert again.outlets("a") == ["wire", "paper", "blog"]
    now[0] = 2000.0
    assert again.evict() == 1
    assert again.outlets("a") == []
    again.close()
