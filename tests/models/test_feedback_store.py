"""The feedback store: per-head replacement, history, publish flags, splits, labels, exports."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from models.exceptions import FeedbackError
from models.feedback import (
    EXPORT_COLUMNS,
    PARQUET_SCHEMA,
    Correction,
    Draft,
    FeedbackStore,
    LabelSets,
    export_corrections,
    load_corrections,
    split_of,
)
from models.modeldir import load_model_dir

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def _c(
    doc_id: str, sentiment: str | None = None, topic: str | None = None, **kw: object
) -> Correction:
    fields: dict[str, object] = {"text": f"text of {doc_id}", "created_at": T0, "source": "test"}
    fields.update(kw)
    return Correction(doc_id, sentiment=sentiment, topic=topic, **fields)  # type: ignore[arg-type]


def test_a_later_correction_replaces_only_the_heads_it_gives(tmp_path: Path) -> None:
    with FeedbackStore(tmp_path / "fb.sqlite") as store:
        assert store.add(_c("a", "negative", note="first look")).outcome == "added"
        assert store.add(_c("a", "negative", note="first look")).outcome == "unchanged"
        later = store.add(_c("a", topic="Earnings", created_at=T0 + timedelta(hours=1)))
        assert later.outcome == "updated"
        assert (later.correction.sentiment, later.correction.topic) == ("negative", "Earnings")
        assert later.correction.note == "first look"  # no new note: the old one stays
        flipped = store.add(_c("a", "positive", created_at=T0 + timedelta(hours=2))).correction
        assert (flipped.sentiment, flipped.topic, flipped.revision) == ("positive", "Earnings", 3)
        assert len(store) == 1
        history = store.history("a")
    assert [(h.revision, h.sentiment, h.topic) for h in history] == [
        (1, "negative", None),
        (2, None, "Earnings"),
        (3, "positive", None),
    ]


def test_the_store_survives_reopening_and_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "fb.sqlite"
    with FeedbackStore(path) as store:
        store.add_many([_c("a", "negative"), _c("b", topic="Macro")])
    with FeedbackStore(path) as store:
        assert [c.doc_id for c in store.corrections()] == ["a", "b"]
        assert store.get("b") == _c("b", topic="Macro", revision=1)
        assert store.get("zzz") is None
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("PRAGMA user_version=99")
    conn.commit()
    conn.close()
    with pytest.raises(FeedbackError, match="schema 99, newer"):
        FeedbackStore(path)


def test_add_many_is_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "fb.sqlite"
    with FeedbackStore(path) as store:
        store.add(_c("a", "negative"))
        broken = _c("b", "neutral", text=None)  # NOT NULL text: the database refuses it
        with pytest.raises(FeedbackError, match=str(path)):
            store.add_many([_c("a", "positive"), broken])
        assert store.get("a").sentiment == "negative"  # type: ignore[union-attr]
        assert store.get("b") is None


def test_pending_until_the_stored_revision_is_published(tmp_path: Path) -> None:
    with FeedbackStore(tmp_path / "fb.sqlite") as store:
        first = store.add(_c("a", "negative")).correction
        store.add(_c("b", "neutral"))
        assert [c.doc_id for c in store.pending()] == ["a", "b"]
        store.mark_published("a", first.revision)
        assert [c.doc_id for c in store.pending()] == ["b"]
        assert store.get("a").published  # type: ignore[union-attr]
        store.add(_c("a", "positive"))  # a new revision must reach the topic too
        assert [c.doc_id for c in store.pending()] == ["a", "b"]
        store.mark_published("a", first.revision)  # a late ack of the old one changes nothing
        assert not store.get("a").published  # type: ignore[union-attr]


def test_split_is_stable_across_processes_and_holds_out_a_fifth() -> None:
    ids = [f"doc-{i}" for i in range(4000)]
    here = [split_of(i) for i in ids[:50]]
    code = "from models.feedback import split_of; print([split_of(f'doc-{i}') for i in range(50)])"
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            timeout=120,
        )
        assert out.stdout.strip() == str(here)
    share = sum(split_of(i) == "holdout" for i in ids) / len(ids)
    assert 0.18 < share < 0.22
    assert _c("doc-1", "negative").split == split_of("doc-1")


def test_labels_are_checked_against_the_model_card() -> None:
    labels = LabelSets.from_card(load_model_dir(verify_hashes=False).card)
    draft = Draft.parse("a", labels=labels, sentiment="BULLISH", topic="m&a | investments")
    assert (draft.sentiment, draft.topic) == ("positive", "M&A | Investments")
    with pytest.raises(FeedbackError, match="doc a: unknown sentiment 'great'"):
        Draft.parse("a", labels=labels, sentiment="great")
    with pytest.raises(FeedbackError, match="doc a: unknown topic 'Crypto'; expected one of"):
        Draft.parse("a", labels=labels, topic="Crypto")
    with pytest.raises(FeedbackError, match="give a sentiment and/or a topic"):
        Draft.parse("a", labels=labels, note="nothing to say")
    with pytest.raises(FeedbackError, match="no text as scored"):
        draft.complete(created_at=T0, source="cli")


def test_exports_have_the_shared_format_and_read_back(tmp_path: Path) -> None:
    rows = [
        _c("a", "negative", note='said "bad", twice\nreally'),
        _c("b", topic="Macro", model_name="m", model_version="1.0", revision=2),
    ]
    for ext in ("csv", "jsonl", "parquet"):
        out = tmp_path / f"fb.{ext}"
        assert export_corrections(rows, out) == 2
        back = load_corrections(out)
        assert [(c.doc_id, c.text, c.sentiment, c.topic, c.note) for c in back] == [
            (c.doc_id, c.text, c.sentiment, c.topic, c.note) for c in rows
        ]
        assert all(b.created_at == T0 for b in back)
    lines = (tmp_path / "fb.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert tuple(first) == EXPORT_COLUMNS
    assert first["topic"] == "" and first["split"] == split_of("a")
    assert first["created_at"] == "2026-01-05T14:30:00+00:00"
    table = pq.read_table(tmp_path / "fb.parquet")
    assert table.schema.equals(PARQUET_SCHEMA)
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert table["model_version"].to_pylist() == [None, "1.0"]
    assert table["sentiment"].to_pylist() == ["negative", None]


def test_a_store_reads_back_like_its_export(tmp_path: Path) -> None:
    path = tmp_path / "fb.sqlite"
    with FeedbackStore(path) as store:
        store.add(_c("a", "negative"))
    assert [c.doc_id for c in load_corrections(path)] == ["a"]
    with pytest.raises(FeedbackError, match="no feedback store or export file"):
        load_corrections(tmp_path / "missing.sqlite")
