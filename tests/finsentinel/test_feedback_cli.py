"""``finsentinel feedback``: texts from the archive, one-line errors, files, the real topic."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kafka import TopicPartition
from typer.testing import CliRunner

from alerts.testing import scored
from finsentinel.cli import app
from models.feedback import FeedbackStore, load_corrections, split_of
from stream.contracts.schemas import FeedbackRecord, ScoredDocument, decode
from stream.contracts.topics import TopicNames
from stream.history.schema import SCORED_SCHEMA, to_row
from stream.kafka import KafkaSettings, make_consumer

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def _archive(root: Path, docs: list[ScoredDocument], name: str = "part-0") -> Path:
    table = pa.Table.from_pylist([to_row(d) for d in docs], schema=SCORED_SCHEMA)
    path = root / "scored" / "date=2026-01-05" / "topic=finsentinel.scored" / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return root


def _doc(doc_id: str, title: str, version: str = "0.3.0", minute: int = 0) -> ScoredDocument:
    doc = scored(doc_id, T0, sentiment="positive", title=title)
    return doc.model_copy(
        update={
            "body": "Shares fell.",
            "model_name": "finsentinel-minilm",
            "model_version": version,
            "scored_at": T0.replace(minute=minute),
        }
    )


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """An archive holding n1 (scored twice: 0.2.0, then 0.3.0) and n2."""
    root = tmp_path / "archive"
    _archive(root, [_doc("n1", "Acme misses", "0.2.0"), _doc("n2", "Globex beats")], "part-0")
    _archive(root, [_doc("n1", "Acme misses", "0.3.0", minute=5)], "part-1")
    return root


def _run(*args: str, store: Path, archive: Path | None = None) -> tuple[int, str, str]:
    argv = ["feedback", *args, "--store", str(store)]
    if archive is not None:
        argv += ["--archive", str(archive)]
    result = CliRunner().invoke(app, argv, env={"KAFKA_BOOTSTRAP_SERVERS": ""})
    return result.exit_code, result.stdout, result.stderr


def test_add_finds_the_text_as_scored_in_the_archive(tmp_path: Path, archive: Path) -> None:
    store = tmp_path / "fb.sqlite"
    code, out, err = _run(
        "add", "n1", "--sentiment", "negative", "--topic", "earnings", "--note", "missed",
        store=store, archive=archive,
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("added: n1 sentiment=negative topic=Earnings (revision 1")
    assert "not published: no Kafka broker configured" in err
    with FeedbackStore(store) as fs:
        c = fs.get("n1")
    assert c is not None
    assert c.text == "Acme misses. Shares fell."  # title and body, as the model read them
    assert (c.model_name, c.model_version) == ("finsentinel-minilm", "0.3.0")  # latest scoring
    assert (c.note, c.source, c.published) == ("missed", "cli", False)


def test_add_refuses_what_it_cannot_check(tmp_path: Path, archive: Path) -> None:
    store = tmp_path / "fb.sqlite"
    code, _, err = _run("add", "ghost", "--sentiment", "negative", store=store, archive=archive)
    assert code == 2
    assert err.startswith("error: doc ghost: no text given and not in the archive")
    assert err.count("\n") == 1
    code, _, err = _run("add", "n1", "--topic", "Crypto", store=store, archive=archive)
    assert code == 2 and "unknown topic 'Crypto'" in err
    code, _, err = _run("add", "n1", store=store, archive=archive)
    assert code == 2 and "give a sentiment and/or a topic" in err
    with FeedbackStore(store) as fs:
        assert len(fs) == 0
    # With the text given, no archive is needed; a later topic fix keeps the sentiment.
    code, _, err = _run("add", "ghost", "--sentiment", "neutral", "--text", "Ghost Co. holds",
                        store=store, archive=tmp_path / "none")  # fmt: skip
    assert code == 0, err
    code, out, _ = _run("add", "ghost", "--topic", "Macro", store=store, archive=tmp_path / "none")
    assert code == 0 and out.startswith("updated: ghost sentiment=neutral topic=Macro (revision 2")


def test_import_names_every_bad_row_and_stores_nothing(tmp_path: Path, archive: Path) -> None:
    store = tmp_path / "fb.sqlite"
    rows = tmp_path / "in.csv"
    rows.write_text(
        "doc_id,sentiment,topic,text\n"
        "n1,negative,,\n"
        "007,positive,Dividend,Zero-zero-seven raises its payout\n"
        "n2,awful,,\n"
        "ghost,neutral,,\n"
        ",negative,,\n"
    )
    code, _, err = _run("import", str(rows), store=store, archive=archive)
    assert code == 2
    lines = err.strip().splitlines()
    assert [line.split(": ")[2] for line in lines[:3]] == ["row 3", "row 4", "row 5"]
    assert "doc n2: unknown sentiment 'awful'" in lines[0]
    assert "doc ghost: no text given" in lines[1]
    assert lines[-1].endswith("nothing stored: 3 bad row(s); fix them or pass --skip-bad")
    assert not store.exists() or len(FeedbackStore(store)) == 0

    code, out, err = _run("import", str(rows), "--skip-bad", store=store, archive=archive)
    assert code == 0, err
    assert "2 added, 0 updated, 0 unchanged, 3 skipped" in out
    assert err.count("skipped: ") == 3
    with FeedbackStore(store) as fs:
        by_id = {c.doc_id: c for c in fs.corrections()}
    assert sorted(by_id) == ["007", "n1"]  # the id is text: 007 is not 7
    assert by_id["007"].text == "Zero-zero-seven raises its payout"
    assert by_id["007"].source == "import:in.csv"
    assert by_id["n1"].text == "Acme misses. Shares fell."
    code, out, _ = _run("import", str(rows), "--skip-bad", store=store, archive=archive)
    assert "0 added, 0 updated, 2 unchanged" in out  # idempotent


def test_import_jsonl_export_and_list(tmp_path: Path, archive: Path) -> None:
    store = tmp_path / "fb.sqlite"
    rows = tmp_path / "in.jsonl"
    rows.write_text(
        json.dumps({"doc_id": "n1", "sentiment": "Bearish"}) + "\n"
        + json.dumps({"doc_id": "n2", "topic": "Earnings", "note": "results day"}) + "\n"
    )  # fmt: skip
    code, _, err = _run("import", str(rows), store=store, archive=archive)
    assert code == 0, err
    for ext in ("parquet", "jsonl", "csv"):
        code, out, _ = _run("export", str(tmp_path / f"out.{ext}"), store=store)
        assert code == 0 and out.startswith("wrote 2 corrections")
    frame = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert list(frame.columns) == [
        "doc_id",
        "text",
        "sentiment",
        "topic",
        "note",
        "created_at",
        "split",
    ]
    assert frame["split"].tolist() == [split_of("n1"), split_of("n2")]
    assert [c.topic for c in load_corrections(tmp_path / "out.parquet")] == [None, "Earnings"]
    code, out, _ = _run("list", store=store)
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split("\t")[:3] == ["doc_id", "sentiment", "topic"]
    assert [line.split("\t")[:3] for line in lines] == [
        ["n1", "negative", "-"],
        ["n2", "-", "Earnings"],
    ]
    assert lines[1].endswith("\tresults day")
    code, _, err = _run("export", str(tmp_path / "x.parquet"), store=tmp_path / "nope.sqlite")
    assert code == 2 and "no feedback store at" in err


def _feedback_records(
    kafka: KafkaSettings, topic: str, expect: int
) -> list[tuple[bytes, FeedbackRecord]]:
    consumer = make_consumer(kafka, group_id=None)
    try:
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        got: list[tuple[bytes, FeedbackRecord]] = []
        deadline = time.monotonic() + 30
        while len(got) < expect and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                got += [(r.key, decode(r.value, FeedbackRecord)) for r in batch]
        return got
    finally:
        consumer.close()


@pytest.mark.integration
def test_corrections_reach_the_feedback_topic_and_failed_ones_are_retried(
    tmp_path: Path, archive: Path, kafka_settings: KafkaSettings, topics: TopicNames
) -> None:
    store = tmp_path / "fb.sqlite"
    prefix = topics.raw_news.split(".")[0]
    base = ["--store", str(store), "--archive", str(archive), "--topic-prefix", prefix]
    runner = CliRunner()
    ok = runner.invoke(
        app,
        ["feedback", "add", "n1", "--sentiment", "negative", *base,
         "--bootstrap-servers", kafka_settings.bootstrap_servers or ""],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    assert f"published 1 correction(s) to {topics.feedback}" in ok.stdout
    # The broker is away for the next one: stored first, then reported, exit 1.
    down = runner.invoke(
        app,
        [
            "feedback",
            "add",
            "n2",
            "--topic",
            "Earnings",
            *base,
            "--bootstrap-servers",
            "127.0.0.1:1",
        ],
        env={"KAFKA_BOOTSTRAP_TIMEOUT_MS": "1000", "KAFKA_REQUEST_TIMEOUT_MS": "1000"},
    )
    assert down.exit_code == 1
    assert down.stderr.startswith("error: stored, not published: ")
    with FeedbackStore(store) as fs:
        assert [c.doc_id for c in fs.pending()] == ["n2"]
    retry = runner.invoke(
        app,
        ["feedback", "publish", "--pending", "--store", str(store), "--topic-prefix", prefix,
         "--bootstrap-servers", kafka_settings.bootstrap_servers or ""],
    )  # fmt: skip
    assert retry.exit_code == 0, retry.stderr
    assert "published 1 correction(s)" in retry.stdout
    with FeedbackStore(store) as fs:
        assert fs.pending() == []
    records = _feedback_records(kafka_settings, topics.feedback, expect=2)
    assert sorted((key, r.doc_id) for key, r in records) == [(b"n1", "n1"), (b"n2", "n2")]
    by_id = {r.doc_id: r for _, r in records}
    assert by_id["n1"].sentiment == "negative" and by_id["n1"].text == "Acme misses. Shares fell."
    assert (by_id["n1"].model_version, by_id["n1"].revision) == ("0.3.0", 1)
    assert by_id["n2"].topic == "Earnings" and by_id["n2"].split == split_of("n2")


def test_import_refuses_files_it_cannot_use(tmp_path: Path, archive: Path) -> None:
    store = tmp_path / "fb.sqlite"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = _run("import", str(empty), store=store, archive=archive)
    assert code == 2 and err == f"error: {empty}: file is empty\n"
    no_labels = tmp_path / "ids.csv"
    no_labels.write_text("doc_id,note\nn1,hm\n")
    code, _, err = _run("import", str(no_labels), store=store, archive=archive)
    assert code == 2 and "need a doc_id column and a sentiment and/or topic column" in err
    code, _, err = _run("import", str(tmp_path / "rows.xlsx"), store=store, archive=archive)
    assert code == 2 and "unsupported extension '.xlsx'" in err
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_text("not SQLite")
    code, _, err = _run("list", store=not_a_store)
    assert code == 2 and err.startswith(f"error: cannot open the feedback store {not_a_store}")
