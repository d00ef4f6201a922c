"""10,000+ hostile records on the raw topics: the scorer delivers or dead-letters every one.

The records (``tests/fuzz/hostile.py``, seeded) are produced as raw bytes to the
raw topics of the session broker and scored by a real :class:`ScorerService`
with the tiny ONNX model, in a thread. Afterwards:

* no crash (the service returns when asked) and no hang (pytest-timeout);
* every invalid record is on the dead-letter topic with the reason ``decode``
  gives it: dead letters counted by reason equal the expected counts;
* every valid record is on the scored topic: scored ids equal valid ids;
* resident memory stays bounded (growth printed and checked against a wide cap).
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from stream.contracts.errors import SchemaError
from stream.contracts.schemas import DeadLetter, RawDocument, ScoredDocument, decode
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_producer
from stream.runtime import StopFlag
from stream.scorer.service import ScorerService
from stream.scorer.settings import ScorerSettings
from tests.faults.harness import read_all
from tests.fuzz.hostile import hostile_records

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

N_RECORDS = 10_500
#: Generous: the scorer holds one batch at a time; a leak of the 10k records would pass it.
RSS_GROWTH_CAP_MB = 400


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _expected(value: bytes) -> str:
    try:
        decode(value, RawDocument)
    except SchemaError as exc:
        return exc.reason
    return "valid"


def test_every_hostile_record_is_scored_or_dead_lettered_with_its_reason(
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    registry: CollectorRegistry,
    tiny_model_dir: Path,
) -> None:
    records = hostile_records(N_RECORDS, seed=11)
    expected = Counter(_expected(r.value) for r in records)
    valid_ids = {r.valid_id for r in records if r.valid_id is not None}
    assert expected["valid"] == len(valid_ids)
    rng = random.Random(11)
    producer = make_producer(kafka_settings, max_request_size=2_000_000)
    for r in records:
        producer.send(rng.choice(topics.raw), key=r.key, value=r.value)
    producer.flush(timeout=120)
    producer.close()

    service = ScorerService(
        ScorerSettings(
            model_dir=tiny_model_dir,
            provider="cpu",
            metrics_port=0,
            group_id=group_id,
            intra_op_threads=1,
        ),
        kafka=kafka_settings,
        topics=topics,
        registry=registry,
    )
    stop = StopFlag()
    rss_before = _rss_mb()
    thread = threading.Thread(target=service.run, args=(stop,), name="scorer")
    t0 = time.monotonic()
    thread.start()
    try:
        deadline = time.monotonic() + 400
        while service.stats.scored + service.stats.dead_lettered < len(records):
            assert thread.is_alive(), "the scorer stopped by itself"
            assert time.monotonic() < deadline, f"stuck at {service.stats}"
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(timeout=120)
    elapsed = time.monotonic() - t0
    rss_growth = _rss_mb() - rss_before
    assert not thread.is_alive()

    scored = [decode(v, ScoredDocument) for *_, v in read_all(kafka_settings, [topics.scored])]
    letters = [decode(v, DeadLetter) for *_, v in read_all(kafka_settings, [topics.deadletter])]
    by_reason = Counter(d.reason for d in letters)
    print(
        f"\nfuzz (scorer): {len(records)} records, {len(scored)} scored, {len(letters)} "
        f"dead letters {dict(by_reason)}, {elapsed:.1f} s, RSS +{rss_growth:.0f} MB"
    )
    assert {d.id for d in scored} == valid_ids
    assert len(scored) == len(valid_ids)  # no duplicate on a clean run
    assert by_reason == Counter({k: v for k, v in expected.items() if k != "valid"})
    assert all(d.stage == "score" for d in letters)
    originals = Counter(base64.b64encode(r.value).decode() for r in records if r.valid_id is None)
    kept = Counter(d.original_b64 for d in letters if d.reason != "too_large")
    assert kept <= originals  # dead letters carry the rejected bytes exactly
    assert rss_growth < RSS_GROWTH_CAP_MB
