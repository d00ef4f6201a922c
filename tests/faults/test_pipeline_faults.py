"""Fault injection: kill, restart and freeze a live pipeline; nothing is lost, alerts agree.

A stream of more than 20,000 distinct documents flows at a steady rate from a
producer thread (and, for a slice, from the crawler reading a local folder)
through the scorer into the alerting service, all real processes on a private
embedded broker. Meanwhile a seeded RNG SIGKILLs the scorer (10+ times), the
alerting service and the crawler at random moments and restarts them, and the
broker is frozen for 20 s (SIGSTOP/SIGCONT). Then:

* every document id that reached the raw topics is in the scored topic;
* duplicates (at-least-once re-deliveries) are counted, and de-duplication by
  id gives exactly the raw set;
* the alerting service's decisions equal an in-process :class:`AlertEngine`
  fed the de-duplicated scored documents once (a fault-free run);
* every restarted process became healthy by itself, and each stops with exit 0.

The scorer runs the shipped int8 model (``models/default``, ~600 short
documents/s on one core), so its sentiments are real and the corpus's two
bursts of negative coverage make the alert rules fire: the comparison with the
fault-free engine covers real firing/resolved transitions. (The tiny test model
labels nothing negative, so no alert would ever fire with it.)
Figures are printed (``-s``) and recorded in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.engine import AlertEngine
from alerts.rules import load_rules
from alerts.service import AlertService
from alerts.settings import AlertSettings
from finsentinel.demo_corpus import generate
from stream.broker import EmbeddedBroker
from stream.contracts.schemas import Alert, RawDocument, ScoredDocument, decode
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings
from stream.runtime import StopFlag
from tests.faults.harness import PYTHON, Service, TopicTail, read_all, service_env
from tests.faults.workload import Chaos, FileWriter, Producer, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1200)]

SEED = 20_261_128
CHUNKS = 41  # x 500 documents (+ two bursts): 20,596 documents
RATE_PER_S = 220.0
CRAWLER_FILES = 8
CRAWLER_ROWS_PER_FILE = 60
SCORER_KILLS = 11
ALERTS_KILLS = 3
CRAWLER_KILLS = 3
FREEZE_S = 20.0
SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "default"
LATENESS_S = 86_400  # the corpus is a back-fill: every document counts, whatever the order

RULES = """
version: 1
rules:
  - name: negative-count-ticker
    series: {kind: ticker, values: ["*"]}
    detectors: [count]
    window: 5m
    threshold: 0.5
    min_negative: 4
    min_history: 30m
    hold: 2m
    clear: 10m
    cooldown: 30m
  - name: negative-spike-topic
    series: {kind: topic, values: ["*"]}
    detectors: [count, share]
    window: 5m
    min_volume: 8
    min_negative: 5
    hold: 2m
    clear: 10m
channels: []
"""


def _corpus(now: datetime) -> list[dict[str, Any]]:
    """More than 20,000 distinct documents over the last ~17 hours, in time order."""
    start = now - timedelta(hours=18)
    docs: list[dict[str, Any]] = []
    for c in range(CHUNKS):
        at = start + timedelta(minutes=25 * c)
        burst = 48 if c in (12, 26) else 0
        for d in generate(
            n_docs=500, burst=burst, seed=SEED + c, start=at, span=timedelta(minutes=25)
        ):
            docs.append({**d, "id": f"c{c}-{d['id']}"})
    docs.sort(key=lambda d: (d["published_at"], d["id"]))
    return docs


def _services(kafka: KafkaSettings, model_dir: Path, tmp: Path) -> dict[str, Service]:
    """The scorer, the alerting service and the crawler, not started yet."""
    logs = tmp / "logs"
    files = tmp / "files"
    for d in (logs, files):
        d.mkdir()
    rules = tmp / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    sources = tmp / "sources.yaml"
    sources.write_text(
        "sources:\n  - {name: fault-files, kind: files, schedule: {interval_s: 2}, path: "
        + json.dumps(str(files))
        + "}\n",
        encoding="utf-8",
    )
    scorer_env = service_env(
        kafka,
        FINSENTINEL_SCORER_MODEL_DIR=str(model_dir),
        FINSENTINEL_SCORER_PROVIDER="cpu",
        FINSENTINEL_SCORER_INTRA_OP_THREADS="1",
        FINSENTINEL_SCORER_GROUP_ID="fault-scorer",
    )
    alerts_env = service_env(
        kafka,
        FINSENTINEL_ALERTS_DB_PATH=str(tmp / "alerts.sqlite"),
        FINSENTINEL_ALERTS_RULES_PATH=str(rules),
        FINSENTINEL_ALERTS_ALLOWED_LATENESS_S=str(LATENESS_S),
        FINSENTINEL_ALERTS_EVALUATE_INTERVAL_S="3",
        FINSENTINEL_ALERTS_CHECKPOINT_INTERVAL_S="2",
        FINSENTINEL_ALERTS_GROUP_ID="fault-alerts",
    )
    ingest_env = service_env(
        kafka,
        FINSENTINEL_INGEST_SOURCES_FILE=str(sources),
        FINSENTINEL_INGEST_STATE_DIR=str(tmp / "ingest"),
    )
    return {
        "scorer": Service(
            "scorer", [PYTHON, "-m", "stream"], scorer_env, "FINSENTINEL_SCORER_METRICS_PORT", logs
        ),
        "alerts": Service(
            "alerts", [PYTHON, "-m", "alerts"], alerts_env, "FINSENTINEL_ALERTS_METRICS_PORT", logs
        ),
        "crawler": Service(
            "crawler", [PYTHON, "-m", "ingest"], ingest_env, "FINSENTINEL_INGEST_METRICS_PORT", logs
        ),
    }


def _decisions(alerts: list[Alert]) -> set[tuple[Any, ...]]:
    """What an alert decided, without evidence ordering or wall-clock fields."""
    return {
        (
            a.key,
            a.state,
            a.severity,
            a.started_at,
            a.updated_at,
            a.resolved_at,
            round(a.score, 9),
            round(a.observed, 9),
            round(a.baseline, 9),
        )
        for a in alerts
    }


def _final_alerts(kafka: KafkaSettings, tmp: Path, ends: dict[tuple[str, int], int]) -> None:
    """Finish the back-fill: one more (in-process) start of the service consumes the rest of
    the scored topic from its checkpoint and flushes every bucket, as the demo does."""
    settings = AlertSettings(
        db_path=tmp / "alerts.sqlite",
        rules_path=tmp / "rules.yaml",
        allowed_lateness_s=LATENESS_S,
        group_id="fault-alerts",
        metrics_port=0,
    )
    service = AlertService(settings, kafka=kafka)
    stop = StopFlag()
    thread = threading.Thread(target=service.run, args=(stop,), name="alerts-final")
    thread.start()
    try:
        # The service's consumed offsets (private; read-only here) reach the topic's end.
        wait_for(
            "the final alerting pass to catch up",
            lambda: all(service._offsets.get(tp, 0) >= end for tp, end in ends.items()),
            300,
            lambda: None,
        )
        service.flush()
    finally:
        stop.set()
        thread.join(timeout=120)
        service.close()


def _reference(rules: Path, scored: list[ScoredDocument]) -> list[Alert]:
    """A fault-free run: the pure engine over each document once."""
    engine = AlertEngine(load_rules(rules), allowed_lateness_s=LATENESS_S)
    for doc in scored:
        engine.add(doc)
    return engine.flush()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def test_kills_and_a_broker_freeze_lose_nothing_and_change_no_alert(
    fault_broker: EmbeddedBroker,
    fault_kafka: KafkaSettings,
    fault_topics: TopicNames,
    tmp_path: Path,
) -> None:
    if not (SHIPPED_MODEL / "model_card.json").exists():
        pytest.skip("the shipped model models/default is missing (make model)")
    t_start = time.monotonic()
    docs = _corpus(datetime.now(UTC))
    file_rows = random.Random(SEED).sample(docs, CRAWLER_FILES * CRAWLER_ROWS_PER_FILE)
    services = _services(fault_kafka, SHIPPED_MODEL, tmp_path)
    for s in services.values():
        s.start()
    chaos = Chaos(
        services,
        fault_broker,
        seed=SEED,
        kills={"scorer": SCORER_KILLS, "alerts": ALERTS_KILLS, "crawler": CRAWLER_KILLS},
        freeze_s=FREEZE_S,
    )

    def supervise() -> None:
        for s in services.values():
            s.supervise()
            _ = s.ready  # polls /healthz until this start answers, so its time is measured

    startup_s = wait_for(
        "every service to become ready", lambda: all(s.ready for s in services.values()),
        300, supervise,
    )  # fmt: skip
    raw_tail = TopicTail(fault_kafka, fault_topics.raw)
    scored_tail = TopicTail(fault_kafka, [fault_topics.scored])
    producer = Producer(fault_kafka, fault_topics, docs, RATE_PER_S)
    writer = FileWriter(tmp_path / "files", file_rows, files=CRAWLER_FILES, gap_s=6.0)
    t_flow = time.monotonic()
    producer.start()
    writer.start()
    chaos.freeze_at = t_flow + 0.4 * len(docs) / RATE_PER_S
    try:
        wait_for(
            "the fault schedule and the input",
            lambda: chaos.finished and producer.done.is_set() and writer.done.is_set(),
            900, chaos.tick,
        )  # fmt: skip
        quiet = {"n": -1, "since": time.monotonic()}

        def converged() -> bool:
            if raw_tail.records != quiet["n"]:
                quiet.update(n=raw_tail.records, since=time.monotonic())
            settled = time.monotonic() - quiet["since"] > 10  # the crawler read every file
            ready = all(s.ready for s in services.values())
            return settled and ready and raw_tail.ids() <= scored_tail.ids()

        drain_s = wait_for("every raw document to be scored", converged, 600, supervise)
    finally:
        raw_tail.close()
        scored_tail.close()
    exit_codes = {name: s.terminate() for name, s in services.items()}
    assert not producer.errors, producer.errors[:3]

    raw_records = read_all(fault_kafka, fault_topics.raw)
    scored_records = read_all(fault_kafka, [fault_topics.scored])
    raw_ids = {RawDocument.model_validate_json(v).id for *_, v in raw_records}
    unique: dict[str, ScoredDocument] = {}
    for *_, v in scored_records:
        doc = decode(v, ScoredDocument)
        unique.setdefault(doc.id, doc)  # the copy the alerting service saw first
    duplicates = len(scored_records) - len(unique)
    ends: dict[tuple[str, int], int] = {}
    for topic, part, offset, _ in scored_records:
        ends[(topic, part)] = max(ends.get((topic, part), 0), offset + 1)
    _final_alerts(fault_kafka, tmp_path, ends)
    alert_records = read_all(fault_kafka, [fault_topics.alerts], idle_s=4.0)
    emitted = [decode(v, Alert) for *_, v in alert_records]
    expected = _reference(tmp_path / "rules.yaml", list(unique.values()))

    latencies = [scored_tail.first_seen[i] - t for i, t in producer.sent_at.items()]
    resumed = chaos.resumed_at or t_flow
    after = [scored_tail.first_seen[i] for i, t in producer.sent_at.items() if t >= resumed]
    before = [scored_tail.first_seen[i] for i, t in producer.sent_at.items() if t < resumed]
    figures = {
        "documents_produced": len(producer.sent_at),
        "documents_from_crawler": len(raw_ids) - len(producer.sent_at),
        "raw_ids": len(raw_ids),
        "scored_records": len(scored_records),
        "duplicates": duplicates,
        "kills": {n: s.kills for n, s in services.items()},
        "unexpected_exits": {n: s.unexpected_exits for n, s in services.items()},
        "ready_after_start_s_max": {n: round(max(s.ready_s), 1) for n, s in services.items()},
        "freeze_s": FREEZE_S,
        "scoring_resumed_after_thaw_s": round(
            min((t for t in scored_tail.first_seen.values() if t > resumed), default=resumed)
            - resumed,
            1,
        ),
        "first_new_doc_scored_after_thaw_s": round(min(after) - resumed, 1) if after else None,
        "backlog_before_thaw_scored_by_s": round(max(before) - resumed, 1) if before else None,
        "latency_p50_s": round(_pct(latencies, 0.5), 2),
        "latency_p99_s": round(_pct(latencies, 0.99), 2),
        "latency_max_s": round(max(latencies), 1),
        "alert_transitions": len(expected),
        "alert_records_emitted": len(emitted),
        "startup_s": round(startup_s, 1),
        "drain_after_input_s": round(drain_s, 1),
        "exit_codes": exit_codes,
        "total_s": round(time.monotonic() - t_start, 1),
    }
    print("\nfault-injection figures:", json.dumps(figures, indent=1))
    if out := os.environ.get("FINSENTINEL_FAULT_FIGURES"):
        Path(out).write_text(json.dumps(figures, indent=1), encoding="utf-8")

    assert len(docs) >= 20_000
    assert set(unique) == raw_ids, "scored ids differ from raw ids"
    assert raw_ids >= set(producer.sent_at)
    assert duplicates <= len(raw_ids) // 2, f"{duplicates} duplicates is not bounded"
    assert services["scorer"].kills >= 10
    assert all(s.kills >= 1 for s in services.values())
    assert not any(s.unexpected_exits for s in services.values()), figures["unexpected_exits"]
    assert all(len(s.ready_s) >= 1 for s in services.values())
    assert exit_codes == {"scorer": 0, "alerts": 0, "crawler": 0}, {
        n: s.log_tail() for n, s in services.items() if exit_codes[n] != 0
    }
    assert any(a.state == "firing" for a in expected), "the bursts should fire an alert"
    assert _decisions(emitted) == _decisions(expected)
