"""Aggregation, trend windows, lateness, de-duplication and the engine end to end (no Kafka)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from alerts.aggregate import Aggregator
from alerts.detectors import CountSurge
from alerts.engine import AlertEngine
from alerts.rules import load_rules, parse_rules
from alerts.testing import scored, synthetic_stream
from alerts.windows import TrendWindows

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
DEFAULT_RULES = Path(__file__).parents[2] / "alerts" / "rules.default.yaml"


def _run(engine: AlertEngine, docs):
    out = []
    for d in docs:
        engine.add(d)
        out += engine.advance()
    return out + engine.flush()


def test_late_documents_are_counted_not_added() -> None:
    agg = Aggregator(bucket_s=60, allowed_lateness_s=120)
    assert agg.add(scored("a", T0)) == "accepted"
    assert agg.add(scored("b", T0 + timedelta(minutes=10))) == "accepted"
    # The watermark is 10:00 - 2 min = 8:08: a document from 8:06 is beyond the lateness.
    assert agg.add(scored("c", T0 + timedelta(minutes=6))) == "late"
    assert agg.add(scored("d", T0 + timedelta(minutes=8, seconds=30))) == "accepted"
    buckets = agg.advance()
    assert [b.start_s for b in buckets] == [int(T0.timestamp()) + 60 * i for i in range(8)]
    assert sum(b.stats[0, 0] for b in buckets) == 1  # only "a" is in a final bucket
    assert agg.add(scored("e", T0 + timedelta(minutes=8, seconds=50))) == "accepted"
    rest = agg.flush()
    assert sum(b.stats[0, 0] for b in rest) == 3


def test_out_of_order_sources_before_any_bucket_closed_are_not_late() -> None:
    agg = Aggregator(bucket_s=60, allowed_lateness_s=60)
    agg.expect_source("0")
    agg.expect_source("1")
    # Partition 1 is read first and is ten minutes ahead of partition 0.
    assert agg.add(scored("p1", T0 + timedelta(minutes=10)), "1") == "accepted"
    assert agg.advance() == []  # partition 0 has not spoken: the watermark waits
    assert agg.add(scored("p0", T0), "0") == "accepted"
    closed = agg.advance()  # watermark = min(0:00, 0:10) - 1 min: nothing final yet
    assert closed == []
    agg.add(scored("p0b", T0 + timedelta(minutes=12)), "0")
    closed = agg.advance()  # watermark 0:09: buckets 0:00..0:08 final, p0 counted once
    assert [b.stats[0, 0] for b in closed][:1] == [1] and len(closed) == 9


def test_series_beyond_max_series_are_not_tracked_but_still_counted_in_all() -> None:
    agg = Aggregator(bucket_s=60, allowed_lateness_s=0, max_series=4)
    agg.add(scored("a", T0, topic="Macro", tickers=["AAA"]))  # all, topic, source, ticker
    agg.add(scored("b", T0, topic="Macro", tickers=["BBB"]))  # BBB would be the 5th series
    assert len(agg.index) == 4 and agg.index.find(("ticker", "BBB")) is None
    assert agg.dropped_series == 1
    (bucket,) = agg.flush()
    assert bucket.stats[agg.index.find(("all", "all")), 0] == 2


def test_duplicates_are_skipped_within_retention_and_forgotten_after() -> None:
    agg = Aggregator(bucket_s=60, allowed_lateness_s=0, dedup_retention_s=600)
    assert agg.add(scored("a", T0)) == "accepted"
    assert agg.add(scored("a", T0, sentiment="negative")) == "duplicate"  # a rescored replay
    agg.add(scored("z", T0 + timedelta(minutes=30)))
    agg.advance()
    assert "a" not in agg._seen  # bounded memory: evicted with the window


def test_forced_watermark_closes_empty_buckets_in_order() -> None:
    agg = Aggregator(bucket_s=60, allowed_lateness_s=300)
    agg.add(scored("a", T0))
    closed = agg.advance_to(int(T0.timestamp()) + 180)
    assert [b.end_s - b.start_s for b in closed] == [60, 60, 60]
    assert [b.stats[0, 0] for b in closed] == [1, 0, 0]


def test_trend_windows_match_pandas_rolling_sums() -> None:
    docs = synthetic_stream(start=T0, hours=3, docs=400, seed=3)
    engine = AlertEngine(
        parse_rules("rules: [{name: r, series: {kind: all}}]"),
        windows_s=(300, 3600),
        allowed_lateness_s=0,
    )
    _run(engine, docs)
    frame = pd.DataFrame(
        {
            "t": [d.published_at for d in docs],
            "neg": [d.sentiment == "negative" for d in docs],
            "conf": [d.confidence for d in docs],
            "ws": [d.confidence * d.sentiment_score for d in docs],
        }
    ).set_index("t")
    per_min = frame.resample("60s").sum()
    end = engine.windows.last_end_s
    last = per_min[per_min.index < pd.Timestamp(end, unit="s", tz=UTC)]
    for window_s in (300, 3600):
        trend = engine.trend(window_s)
        tail = last.iloc[-(window_s // 60) :]
        row = engine.index.find(("all", "all"))
        assert trend.total[row] == frame[frame.index >= tail.index[0]].shape[0]
        assert trend.negative[row] == tail["neg"].sum()
        assert math.isclose(trend.mean_score[row], tail["ws"].sum() / tail["conf"].sum())
        assert math.isclose(trend.negative_share[row], tail["neg"].sum() / trend.total[row])


def test_top_documents_are_the_most_confident_negative_ones() -> None:
    w = TrendWindows(bucket_s=60, windows_s=(300,))
    agg = Aggregator(bucket_s=60, allowed_lateness_s=0, top_k=2)
    agg.add(scored("n1", T0, sentiment="negative"))
    agg.add(scored("n2", T0 + timedelta(seconds=5), sentiment="negative"))
    agg.add(scored("p1", T0 + timedelta(seconds=6), sentiment="positive"))
    for b in agg.flush():
        w.push(b)
    top = w.top_documents(0, since_s=0)
    assert {e.id for e in top} == {"n1", "n2"} and all(e.sentiment == "negative" for e in top)


def test_default_rules_fire_on_a_burst_and_stay_quiet_on_a_flat_stream() -> None:
    rules = load_rules(DEFAULT_RULES)
    flat = _run(AlertEngine(rules), synthetic_stream(start=T0, docs=480, seed=1))
    assert flat == []
    burst = _run(
        AlertEngine(rules),
        synthetic_stream(
            start=T0, docs=480, seed=1, burst_topic="Earnings", burst_ticker="ACME", burst_docs=45
        ),
    )
    firing = [a for a in burst if a.state == "firing"]
    assert {(a.rule, a.series) for a in firing} == {
        ("negative-spike-topic", "Earnings"),
        ("negative-spike-ticker", "ACME"),
    }
    topic = next(a for a in firing if a.series == "Earnings")
    mid = T0 + timedelta(hours=2)
    assert mid <= topic.started_at <= mid + timedelta(minutes=20)
    assert topic.observed > topic.baseline
    assert topic.evidence and all(e.sentiment == "negative" for e in topic.evidence)
    assert any(e.title.startswith("Profit warning") for e in topic.evidence)
    resolved = [a for a in burst if a.state == "resolved"]
    assert {a.key for a in resolved} == {a.key for a in firing}


def test_replay_in_one_go_decides_like_live_bucket_by_bucket() -> None:
    rules = load_rules(DEFAULT_RULES)
    docs = synthetic_stream(start=T0, docs=480, seed=2, burst_topic="Macro", burst_docs=45)
    live = _run(AlertEngine(rules), docs)
    replay = AlertEngine(rules)
    for d in docs:
        replay.add(d)
    fast = replay.flush()
    assert [(a.key, a.state, a.updated_at) for a in live] == [
        (a.key, a.state, a.updated_at) for a in fast
    ]


def test_engine_state_roundtrip_resumes_identically() -> None:
    rules = load_rules(DEFAULT_RULES)
    docs = synthetic_stream(start=T0, docs=480, seed=4, burst_topic="Legal", burst_docs=45)
    whole = _run(AlertEngine(rules), docs)
    first = AlertEngine(rules)
    head = _run_no_flush(first, docs[:300])
    seen = [(i, s) for i, s in first.aggregator._seen.items()]
    state = json.loads(json.dumps(first.state()))
    second = AlertEngine(rules)
    second.load(state, seen)
    tail = _run(second, docs[300:] + docs[250:300])  # the replayed overlap is de-duplicated
    assert [(a.key, a.state) for a in head + tail] == [(a.key, a.state) for a in whole]
    assert second.stats.duplicate == 50


def _run_no_flush(engine: AlertEngine, docs):
    out = []
    for d in docs:
        engine.add(d)
        out += engine.advance()
    return out


def test_cooldown_suppresses_a_quick_second_firing() -> None:
    rules = parse_rules(
        "rules: [{name: r, series: {kind: topic}, min_history: 10m, hold: 1m, clear: 2m,"
        " cooldown: 1h, detectors: [count], min_negative: 3}]"
    )
    engine = AlertEngine(rules, allowed_lateness_s=0, seasonal=False)
    docs = [scored(f"d{i}", T0 + timedelta(minutes=i)) for i in range(60)]
    for burst_at in (60, 75):  # two bursts 15 minutes apart
        docs += [
            scored(
                f"b{burst_at}-{i}",
                T0 + timedelta(minutes=burst_at, seconds=5 * i),
                sentiment="negative",
            )
            for i in range(10)
        ]
    docs += [scored(f"e{i}", T0 + timedelta(minutes=80 + i)) for i in range(30)]
    out = _run(engine, sorted(docs, key=lambda d: d.published_at))
    assert [a.state for a in out] == ["firing", "resolved"]


def test_series_cold_start_uses_the_global_prior() -> None:
    rules = load_rules(DEFAULT_RULES)
    docs = synthetic_stream(start=T0, docs=480, seed=5)
    new = [
        scored(
            f"new{i}",
            T0 + timedelta(hours=2, seconds=20 * i),
            sentiment="negative",
            topic="Bankruptcy",
        )
        for i in range(30)
    ]
    out = _run(AlertEngine(rules), sorted(docs + new, key=lambda d: d.published_at))
    assert ("negative-spike-topic", "Bankruptcy") in {(a.rule, a.series) for a in out}


def test_mask_excludes_unselected_series() -> None:
    rules = parse_rules("rules: [{name: r, series: {kind: topic, values: ['Mac*']}}]")
    engine = AlertEngine(rules)
    _run(engine, synthetic_stream(start=T0, docs=100, seed=6, hours=1))
    mask = engine._rules[0].selected()
    keys = [engine.index.key(int(r)) for r in np.flatnonzero(mask)]
    assert keys == [("topic", "Macro")]


def test_a_changed_rule_restarts_only_its_own_detectors() -> None:
    rules = load_rules(DEFAULT_RULES)
    docs = synthetic_stream(start=T0, docs=200, seed=8, hours=2)
    first = AlertEngine(rules)
    _run_no_flush(first, docs)
    state = json.loads(json.dumps(first.state()))
    changed = rules.model_copy(
        update={"rules": [rules.rules[0].model_copy(update={"window_s": 600}), rules.rules[1]]}
    )
    second = AlertEngine(changed)
    second.load(state, [])
    topic_rule, ticker_rule = second._rules
    topic_count, ticker_count = (r.detector.detectors["surge"] for r in (topic_rule, ticker_rule))
    assert isinstance(topic_count, CountSurge) and isinstance(ticker_count, CountSurge)
    assert topic_count._n.size == 0  # restarted
    assert ticker_count._n.size > 0  # restored
