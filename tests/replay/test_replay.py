"""Replay: Kafka by time range (exact, leaves live groups alone), archive filters, pacing,
into a topic, and rescoring that keeps both the as-was and the as-is scores."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from stream.contracts.schemas import ScoredDocument, encode, message_key
from stream.contracts.topics import TopicNames
from stream.history.query import HistoryQuery
from stream.history.replay import Pacer, ParquetSink, ReplayItem, Rescorer, TopicSink, replay
from stream.history.schema import from_row
from stream.history.sources import archive_documents, decode_record, kafka_time_range
from stream.kafka import KafkaSettings, make_consumer, make_producer

from .conftest import START


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


@pytest.fixture
def docs(history: pa.Table) -> list[ScoredDocument]:
    """120 consecutive scored documents (a few hours of history)."""
    return [from_row(r, ScoredDocument) for r in history.slice(1000, 120).to_pylist()]


def _commit_live_group(kafka: KafkaSettings, group: str, topic: str) -> dict[int, int | None]:
    consumer = make_consumer(kafka, group_id=group)
    parts = [TopicPartition(topic, p) for p in range(3)]
    consumer.assign(parts)
    consumer.commit({tp: OffsetAndMetadata(5, "", -1) for tp in parts})
    state = {tp.partition: consumer.committed(tp) for tp in parts}
    consumer.close(autocommit=False)
    return state


def _committed(kafka: KafkaSettings, group: str, topic: str) -> dict[int, int | None]:
    consumer = make_consumer(kafka, group_id=group)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(3)}
    finally:
        consumer.close(autocommit=False)


@pytest.mark.integration
def test_kafka_time_range_is_exact_and_leaves_live_groups_alone(
    kafka_settings: KafkaSettings, topics: TopicNames, group_id: str, docs: list[ScoredDocument]
) -> None:
    producer = make_producer(kafka_settings)
    for d in docs:
        producer.send(
            topics.scored, value=encode(d), key=message_key(d), timestamp_ms=_ms(d.published_at)
        )
    producer.flush()
    producer.close()
    before = _commit_live_group(kafka_settings, group_id, topics.scored)
    lo, hi = docs[30].published_at, docs[90].published_at
    got = [
        decode_record(r).id
        for r in kafka_time_range(
            kafka_settings, [topics.scored], _ms(lo), _ms(hi), idle_timeout_s=2.0
        )
    ]
    want = [d.id for d in docs if _ms(lo) <= _ms(d.published_at) < _ms(hi)]
    assert sorted(got) == sorted(want) and len(got) == len(set(got)) == 60
    assert (
        _committed(kafka_settings, group_id, topics.scored) == before == dict.fromkeys(range(3), 5)
    )


@pytest.mark.integration
def test_replay_from_the_archive_into_a_topic(
    kafka_settings: KafkaSettings, topics: TopicNames, archive_dir: Path
) -> None:
    query = HistoryQuery(
        "scored", START + timedelta(hours=12), START + timedelta(hours=13), tickers=("T001",)
    )
    items = [
        ReplayItem(_ms(d.published_at), i, d)
        for i, d in enumerate(archive_documents(archive_dir, query))
    ]
    sink = TopicSink(make_producer(kafka_settings), topics.scored)
    stats = replay(items, pacer=Pacer(None), topic_sink=sink)
    sink.close()
    sink.producer.close()
    assert stats.sent == len(items) > 5
    consumer = make_consumer(kafka_settings, group_id=None)
    parts = [TopicPartition(topics.scored, p) for p in range(3)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while len(seen) < len(items) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            seen += [decode_record(r).id for r in records]  # type: ignore[arg-type]
    consumer.close()
    assert sorted(seen) == sorted(i.doc.id for i in items)


def test_archive_filters_and_order(archive_dir: Path, history: pa.Table) -> None:
    t0, t1 = START + timedelta(hours=20), START + timedelta(hours=30)  # across midnight
    query = HistoryQuery("scored", t0, t1, sources=("wire",), tickers=("T002", "T004"))
    got = list(archive_documents(archive_dir, query, batch_rows=17))
    want = [
        r["id"]
        for r in history.to_pylist()
        if t0 <= r["published_at"] < t1
        and r["source"] == "wire"
        and r["tickers"][0] in ("T002", "T004")
    ]
    assert [d.id for d in got] == want and len(want) > 20
    times = [d.published_at for d in got]
    assert times == sorted(times)


def test_pacing_keeps_scaled_gaps() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(60.0, clock=lambda: now[0], sleep=sleep)
    for event_ms in (0, 60_000, 60_000, 180_000):  # gaps of 1 min, 0, 2 min
        pacer.wait(event_ms)
    assert slept == [1.0, 2.0]
    capped = Pacer(60.0, max_gap_s=1.5, clock=lambda: now[0], sleep=sleep)
    slept.clear()
    for event_ms in (0, 3_600_000, 3_660_000):  # an hour's gap capped to 1.5 s, then 1 s
        capped.wait(event_ms)
    assert slept == [1.5, 1.0]


@pytest.mark.slow
def test_rescoring_keeps_as_was_and_as_is_scores(
    archive_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    query = HistoryQuery(
        "scored", START + timedelta(hours=14), START + timedelta(hours=14, minutes=30)
    )
    docs = list(archive_documents(archive_dir, query))
    items = [ReplayItem(_ms(d.published_at), i, d) for i, d in enumerate(docs)]
    rescorer = Rescorer.load(tiny_model_dir)
    out = tmp_path / "compare.parquet"
    sink = ParquetSink(out, scored=True, rescored=True)
    stats = replay(items, pacer=Pacer(None), parquet_sink=sink, rescorer=rescorer, rescore_batch=16)
    sink.close()
    assert stats.rescored == stats.written == len(docs) > 10
    table = pq.read_table(out)
    card = rescorer.scorer.classifier.card
    assert set(table["asis_model_version"].to_pylist()) == {card.version}
    assert set(table["model_version"].to_pylist()) == {"synthetic-1"}  # the as-was model
    assert table["id"].to_pylist() == [d.id for d in docs]
    assert table["sentiment"].to_pylist() == [d.sentiment for d in docs]
    for row in table.select(["asis_p_negative", "asis_p_neutral", "asis_p_positive"]).to_pylist():
        assert abs(sum(row.values()) - 1.0) < 1e-6
    assert not list(tmp_path.glob("*.tmp"))
