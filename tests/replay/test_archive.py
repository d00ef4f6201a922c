"""The archive sink on the embedded broker: files, layout, commits only after close, dead letters.

The sink's monotonic clock is a test-controlled value, so files rotate by
age exactly when the test says; Kafka, the files and fsync are real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from kafka import TopicPartition

from stream.contracts.schemas import (
    DeadLetter,
    RawDocument,
    ScoredDocument,
    decode,
    encode,
    message_key,
)
from stream.contracts.topics import TopicNames
from stream.deadletters import DeadLetterSendError
from stream.history.archive import ArchiveSink
from stream.history.query import HistoryQuery, archive_dates, read_history
from stream.history.schema import from_row
from stream.history.settings import ArchiveSettings
from stream.kafka import KafkaSettings, make_consumer, make_producer
from stream.runtime import StopFlag

from .conftest import START

pytestmark = pytest.mark.integration


def _wait(cond: Callable[[], bool], what: str, timeout_s: float = 40.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _committed(kafka: KafkaSettings, group: str, topics: TopicNames) -> dict[tuple[str, int], int]:
    """The group's committed offsets as the broker has them (no join: committed() only asks)."""
    consumer = make_consumer(kafka, group_id=group)
    try:
        out = {}
        for topic in (*topics.raw, topics.scored):
            for p in range(3):
                offset = consumer.committed(TopicPartition(topic, p))
                if offset is not None:
                    out[(topic, p)] = offset
        return out
    finally:
        consumer.close(autocommit=False)


def _produce(kafka: KafkaSettings, topics: TopicNames, docs: list[ScoredDocument]) -> int:
    producer = make_producer(kafka)
    for doc in docs:
        producer.send(topics.scored, value=encode(doc), key=message_key(doc))
    raw = RawDocument(**{k: v for k, v in dict(docs[0]).items() if k in RawDocument.model_fields})
    producer.send(topics.raw_news, value=encode(raw), key=b"raw")
    producer.send(topics.scored, value=b"{not json", key=b"bad")
    producer.flush()
    producer.close()
    return len(docs) + 2


@pytest.fixture
def docs(history: pa.Table) -> list[ScoredDocument]:
    """150 scored documents around midnight: they span two archive dates."""
    day2 = pa.scalar(START + timedelta(days=1), pa.timestamp("us", "UTC"))
    first = pc.sum(pc.less(history["published_at"], day2)).as_py()
    rows = history.slice(first - 75, 150).to_pylist()
    return [from_row(r, ScoredDocument) for r in rows]


def test_archive_writes_hive_files_and_commits_only_after_close(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    registry: object,
    docs: list[ScoredDocument],
    tmp_path: Path,
) -> None:
    total = _produce(kafka_settings, topics, docs)
    now = [0.0]
    settings = ArchiveSettings(
        root_dir=tmp_path, group_id=group_id, max_file_age_s=600, poll_timeout_s=0.2
    )
    sink = ArchiveSink(
        settings, kafka=kafka_settings, topics=topics, registry=registry,  # type: ignore[arg-type]
        clock=lambda: now[0], serve_metrics=False,
    )  # fmt: skip
    stop = StopFlag()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    try:
        _wait(lambda: sink.consumed == total, "the sink to consume every record")
        # Every record is read; the documents sit in files not yet closed, so no offset
        # may pass the first record such a file holds (on the broker or in the sink).
        assert not list(tmp_path.rglob("*.parquet"))
        pending = sink.pending
        assert sum(1 for tp in pending if tp[0] == topics.scored) == 3
        broker_side = _committed(kafka_settings, group_id, topics)
        for tp, low in pending.items():
            assert sink.committed.get(tp, 0) <= low
            assert broker_side.get(tp, 0) <= low
        now[0] = 601.0  # the files are now older than max_file_age_s
        _wait(lambda: not list(tmp_path.rglob("*.parquet.tmp")), "the files to close")
        _wait(
            lambda: sum(_committed(kafka_settings, group_id, topics).values()) == total,
            "the offsets to be committed",
        )
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()

    dates = archive_dates(tmp_path, "scored")
    assert dates == sorted({d.published_at.date().isoformat() for d in docs})
    assert len(dates) == 2
    for path in tmp_path.rglob("*.parquet"):
        rel = path.relative_to(tmp_path).parts
        assert rel[1].startswith("date=") and rel[2].startswith("topic=")
    table = read_history(tmp_path, HistoryQuery("scored"))
    assert sorted(table["id"].to_pylist()) == sorted(d.id for d in docs)
    back = {r["id"]: from_row(r, ScoredDocument) for r in table.to_pylist()}
    assert all(back[d.id] == d for d in docs)
    assert read_history(tmp_path, HistoryQuery("raw")).num_rows == 1

    get = registry.get_sample_value  # type: ignore[attr-defined]
    assert get("finsentinel_archive_records_written_total", {"doc_type": "scored"}) == len(docs)
    assert (
        get("finsentinel_archive_files_closed_total", {"doc_type": "scored", "reason": "age"}) == 2
    )
    letters = {"stage": "archive", "reason": "malformed_json"}
    assert get("finsentinel_deadletters_total", letters) == 1
    _assert_dead_letter(kafka_settings, topics)


def _assert_dead_letter(kafka: KafkaSettings, topics: TopicNames) -> None:
    consumer = make_consumer(kafka, group_id=None)
    parts = [TopicPartition(topics.deadletter, p) for p in range(3)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    letters: list[DeadLetter] = []
    deadline = time.monotonic() + 20
    while not letters and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            letters += [decode(r.value, DeadLetter) for r in records]
    consumer.close()
    assert [(d.stage, d.reason, d.original) for d in letters] == [
        ("archive", "malformed_json", b"{not json")
    ]


@pytest.mark.slow
def test_a_rebalance_closes_files_and_nothing_is_lost(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    docs: list[ScoredDocument],
    tmp_path: Path,
) -> None:
    """Two sinks in one group: the join closes the first sink's files, both keep committing.

    The sinks' clock is the test's, so files close by age only when the test says:
    the first sink's files are still open when the second joins (on a loaded machine
    a real 2 s age used to close them first, and the test then waited for a
    rebalance close that could not happen).
    """
    from prometheus_client import CollectorRegistry

    first, second = docs[:75], docs[75:]
    _produce(kafka_settings, topics, first)
    now = [0.0]
    settings = ArchiveSettings(
        root_dir=tmp_path, group_id=group_id, max_file_age_s=600, poll_timeout_s=0.2
    )
    sinks = [
        ArchiveSink(
            settings, kafka=kafka_settings, topics=topics, registry=CollectorRegistry(),
            clock=lambda: now[0], serve_metrics=False,
        )
        for _ in range(2)
    ]  # fmt: skip
    stops = [StopFlag(), StopFlag()]
    threads = [
        threading.Thread(target=s.run, args=(f,), daemon=True)
        for s, f in zip(sinks, stops, strict=True)
    ]
    threads[0].start()
    try:
        _wait(lambda: sinks[0].consumed == len(first) + 2, "the first sink to read everything")
        assert not list(tmp_path.rglob("*.parquet"))  # all in open files
        threads[1].start()  # joins the group: the first sink's partitions are revoked
        rebalance = {"doc_type": "scored", "reason": "rebalance"}
        _wait(
            lambda: sinks[0].registry.get_sample_value(
                "finsentinel_archive_files_closed_total", rebalance
            ) > 0,
            "the first sink to close its files on the rebalance",
        )  # fmt: skip
        _wait(lambda: sinks[1].ready, "the second sink to join")
        producer = make_producer(kafka_settings)
        for d in second:
            producer.send(topics.scored, value=encode(d), key=message_key(d))
        producer.flush()
        producer.close()
        total = len(docs) + 2

        def settled() -> bool:
            now[0] += 1_000.0  # every open file is due: the sinks close and commit it
            done = sum(_committed(kafka_settings, group_id, topics).values()) >= total
            return done and not sinks[0].pending and not sinks[1].pending

        _wait(settled, "every record committed")
    finally:
        for f in stops:
            f.set()
        for t in threads:
            t.join(timeout=30)
    table = read_history(tmp_path, HistoryQuery("scored"))
    assert sorted(table["id"].to_pylist()) == sorted(d.id for d in docs)


def test_a_dead_letter_that_cannot_be_sent_stops_the_sink_before_its_record(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    docs: list[ScoredDocument],
    tmp_path: Path,
) -> None:
    producer = make_producer(kafka_settings)
    for d in docs[:5]:
        producer.send(topics.scored, value=encode(d), key=b"one")
    bad = producer.send(topics.scored, value=b"{not json", key=b"one").get(timeout=30)
    for d in docs[5:10]:
        producer.send(topics.scored, value=encode(d), key=b"one")
    producer.flush()
    producer.close()
    settings = ArchiveSettings(root_dir=tmp_path, group_id=group_id, poll_timeout_s=0.2)
    # A producer whose size limit no dead letter fits: every send attempt is refused.
    refusing = make_producer(kafka_settings, max_request_size=100)
    sink = ArchiveSink(
        settings, kafka=kafka_settings, topics=topics, producer=refusing,
        clock=lambda: 0.0, serve_metrics=False,
    )  # fmt: skip
    with pytest.raises(DeadLetterSendError, match=rf"\[{bad.partition}\]@{bad.offset}"):
        sink.run(StopFlag())
    tp = (topics.scored, bad.partition)
    assert _committed(kafka_settings, group_id, topics).get(tp) == bad.offset
    table = read_history(tmp_path, HistoryQuery("scored"))
    assert sorted(table["id"].to_pylist()) == sorted(d.id for d in docs[:5])
