"""Keeping the model current, end to end (issue 17's "done when").

On the embedded broker, with the tiny test encoder trained here in seconds:

1. a real scorer process (``python -m stream``) follows a model registry whose
   ACTIVE version is ``v1`` (trained on a small recipe, drift reference from its
   validation rows); a real Prometheus scrapes it with the shipped rules (the
   drift group's ``for:`` cut to 0s). The stream first carries the reference
   texts (no drift alert), then social-media slang with emoji, new tickers and a
   sell-off's label mix: the drift metrics rise and the drift rules fire;
2. 50 corrections of the slang documents go in through ``finsentinel feedback import``;
3. ``finsentinel train --feedback`` and ``finsentinel export`` make a candidate that
   ``finsentinel models compare`` passes (exit 0); one trained on shuffled labels is
   refused by compare (exit 3) and by ``models promote``;
4. ``models promote`` moves ACTIVE while the stream goes on: the running scorer
   switches between batches, and the scored output, counted by document id, has
   every document once, ``v1`` then ``v2`` on each partition, and
   ``finsentinel_scorer_model_info`` (on /metrics and in Prometheus) says ``v2``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from stream.contracts.schemas import RawDocument, ScoredDocument, decode, encode, message_key
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, make_producer
from tests.deploy.live import (
    Process,
    Prometheus,
    free_port,
    http_get,
    monitoring,
    rules_without_wait,
    wait_for,
)
from tests.deploy.manifests import RULE_FILES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WINDOW = 200  # the drift rules judge no window under 200 documents
GROUP = "finsentinel-model-drift"
T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
VAL_FRACTION, SEED = 0.25, 0
runner = CliRunner()

# The recipe the model is trained on: plain newswire.
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay",
             "Stark", "Wayne", "Tyrell", "Cyberdyne", "Soylent", "Wonka"]  # fmt: skip
NEWS = {
    "positive": ["{} profit jumps to a record", "{} tops forecasts and lifts guidance"],
    "negative": ["{} stock sinks after a heavy loss", "{} falls short and cuts guidance"],
    "neutral": ["{} will hold its annual meeting", "{} sets date for investor call"],
}
TOPICS = {
    "Dividend": "{} declares a quarterly dividend",
    "Earnings": "{} posts second quarter earnings",
    "Fed | Central Banks": "Central bank weighs rate path, {} listens",
}
# What the stream drifts to: slang, emoji (unknown tokens), tickers never seen, and a
# sell-off's label mix (4 negative templates to 2 positive and 1 neutral).
NEW_TICKERS = ["$ZORB", "$QUUX", "$FLRB", "$PLMB", "$BLRP", "$SNZL", "$WUBA", "$KROM", "$GLIP",
               "$YEET"]  # fmt: skip
SLANG = {
    "negative": ["{} bagholders rekt again 🤡", "{} rug pull, bags dumped 🔥",
                 "{} ngmi, puts printing 🤡", "{} whale dumped on retail 🔥"],
    "positive": ["{} to the moon 🚀 diamond hands 💎", "{} calls printing, lambo soon 🚀"],
    "neutral": ["gm {} fam, daily thread chatter"],
}  # fmt: skip
_DRIFT_ALERTS = {"FinSentinelPredictionDrift", "FinSentinelInputDrift"}


def _recipe(root: Path, *, shuffle_sentiment: bool = False) -> dict[str, Path]:
    """The recipe's two files (the sentiment labels shuffled for the worse candidate)."""
    from models.data import RECIPE_FILES

    root.mkdir(parents=True)
    sentiment = pd.DataFrame(
        [(t.format(c), label) for label, ts in NEWS.items() for t in ts for c in COMPANIES],
        columns=["text", "label"],
    )
    if shuffle_sentiment:
        sentiment["label"] = random.Random(1).sample(list(sentiment["label"]), len(sentiment))
    topic = pd.DataFrame(
        [(t.format(c), label) for label, t in TOPICS.items() for c in COMPANIES],
        columns=["text", "label"],
    )
    files = {head: root / name for head, name in RECIPE_FILES.items()}
    sentiment.to_csv(files["sentiment"], index=False)
    topic.to_csv(files["topic"], index=False)
    return files


def _slang() -> list[tuple[str, str]]:
    """70 distinct ``(text, label)`` slang posts in a fixed shuffled order."""
    rows = [(t.format(c), label) for label, ts in SLANG.items() for t in ts for c in NEW_TICKERS]
    random.Random(0).shuffle(rows)
    return rows


def _cli(*args: str, code: int = 0) -> str:
    from finsentinel.cli import app

    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _train_and_export(
    tmp: Path, version: str, files: dict[str, Path], base: Path, feedback: Path | None
) -> Path:
    """``finsentinel train`` (tiny encoder, a few seconds) and ``finsentinel export``."""
    run = tmp / f"run-{version}"
    _cli(
        "train", "--sentiment-data", str(files["sentiment"]), "--topic-data", str(files["topic"]),
        "--run-dir", str(run), "--base-model", str(base), "--epochs", "8", "--batch-size", "16",
        "--learning-rate", "5e-3", "--max-length", "32", "--val-fraction", str(VAL_FRACTION),
        "--seed", str(SEED), "--patience", "8",
        *(["--feedback", str(feedback)] if feedback else []),
    )  # fmt: skip
    out = tmp / f"model-{version}"
    _cli(
        "export", "--run", str(run), "--out", str(out), "--name", "finsentinel-toy",
        "--version", version, "--variants", "fp32,int8", "--min-agreement", "0.8",
    )  # fmt: skip
    return out


def _send(kafka: KafkaSettings, topic: str, docs: list[tuple[str, str]]) -> None:
    producer = make_producer(kafka)
    try:
        for doc_id, text in docs:
            _produce(producer, topic, doc_id, text)
    finally:
        producer.close()


def _produce(producer: KafkaProducer, topic: str, doc_id: str, text: str) -> None:
    doc = RawDocument(
        id=doc_id, source="wire", kind="news", body=text, published_at=T0, fetched_at=T0
    )
    producer.send(topic, value=encode(doc), key=message_key(doc)).get(timeout=30)


@dataclass
class Stream:
    """Documents produced at a steady pace by a thread until stopped."""

    kafka: KafkaSettings
    topic: str
    texts: list[str]
    sent: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    error: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            producer = make_producer(self.kafka)
            try:
                i = 0
                while not self.stop.is_set():
                    _produce(producer, self.topic, f"live-{i}", self.texts[i % len(self.texts)])
                    self.sent.append(f"live-{i}")
                    i += 1
                    self.stop.wait(0.02)
            finally:
                producer.close()
        except BaseException as exc:  # reported by the test
            self.error.append(exc)

    def finish(self) -> list[str]:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive() and not self.error, self.error
        return self.sent


class Scorer:
    """``python -m stream`` following a registry, /metrics on a known port."""

    def __init__(self, workdir: Path, broker: str, topics: TopicNames, registry: Path) -> None:
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSENTINEL_", "KAFKA_"))}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=broker,
            FINSENTINEL_TOPIC_PREFIX=topics.raw_news.split(".")[0],
            FINSENTINEL_SCORER_REGISTRY_DIR=str(registry),
            FINSENTINEL_SCORER_REGISTRY_POLL_S="0.2",
            FINSENTINEL_SCORER_DRIFT_WINDOW_DOCUMENTS=str(WINDOW),
            FINSENTINEL_SCORER_METRICS_PORT=str(self.port),
            FINSENTINEL_SCORER_GROUP_ID=f"scorer-{topics.raw_news.split('.')[0]}",
            FINSENTINEL_SCORER_PROVIDER="cpu",
            FINSENTINEL_SCORER_INTRA_OP_THREADS="1",
            FINSENTINEL_SCORER_BATCH_MAX_WAIT_MS="50",
            FINSENTINEL_SCORER_IDLE_POLL_MS="100",
            FINSENTINEL_LOG_LEVEL="INFO",
        )
        self.process = Process(
            [sys.executable, "-m", "stream"], workdir / "scorer.log", cwd=ROOT, env=env
        )
        wait_for("the scorer to serve /metrics", self._serving, timeout_s=120)

    def _serving(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"the scorer exited:\n{self.process.tail()}")
        return bool(self.samples())

    def samples(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Every ``finsentinel_scorer_*`` sample on /metrics, by sample name."""
        text = http_get(f"http://{self.target}/metrics").decode()
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name.startswith("finsentinel_scorer_"):
                    out.setdefault(s.name, []).append((s.labels, s.value))
        return out

    def scored(self) -> int:
        return int(sum(v for _, v in self.samples()["finsentinel_scorer_documents_scored_total"]))

    def model_versions(self) -> set[str]:
        return {lab["model_version"] for lab, _ in self.samples()["finsentinel_scorer_model_info"]}

    def stop(self) -> None:
        self.process.stop(timeout_s=60)
        code = self.process.proc.returncode
        assert code == 0, f"the scorer exited {code}:\n{self.process.tail()}"


def _read_scored(kafka: KafkaSettings, topic: str, count: int) -> list[tuple[int, ScoredDocument]]:
    """Every scored record in partition and offset order: ``count`` of them, and then
    whatever else arrives before the topic stays quiet for a 2-second poll."""
    consumer = KafkaConsumer(
        **kafka.client_kwargs(), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + 120
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        while batches := consumer.poll(timeout_ms=2000):
            records.extend(r for batch in batches.values() for r in batch)
    finally:
        consumer.close()
    records.sort(key=lambda r: (r.partition, r.offset))
    return [(r.partition, decode(r.value, ScoredDocument)) for r in records]


def _firing(prometheus: Prometheus) -> set[tuple[str, str]]:
    """``(alertname, head)`` of the firing drift alerts."""
    return {
        (a["labels"]["alertname"], a["labels"].get("head", ""))
        for a in prometheus.api("alerts")["alerts"]
        if a["state"] == "firing" and a["labels"]["alertname"] in _DRIFT_ALERTS
    }


def _value(prometheus: Prometheus, expr: str) -> float:
    return float(prometheus.query(expr)[0]["value"][1])


def _evaluated_after(prometheus: Prometheus, when: float) -> bool:
    group = next(g for g in prometheus.api("rules")["groups"] if g["name"] == GROUP)
    last = datetime.fromisoformat(group["lastEvaluation"].replace("Z", "+00:00"))
    return last.timestamp() > when


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """The recipe, the tiny base encoder, model ``v1`` and a registry with it ACTIVE."""
    pytest.importorskip("torch", reason="training the tiny model needs the [train] extra (torch)")
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (make system-deps installs Debian's package)")
    from models.training.tiny import save_tiny_base_model

    recipe = _recipe(tmp_path / "recipe")
    base = save_tiny_base_model(tmp_path / "base")
    v1 = _train_and_export(tmp_path, "v1", recipe, base, None)
    registry = tmp_path / "registry"
    _cli("models", "promote", str(registry), str(v1), "--force", "--reason", "in production")
    yield {"recipe": recipe["sentiment"].parent, "base": base, "v1": v1, "registry": registry}


def test_drift_feedback_retrain_gate_and_swap_without_loss(
    world: dict[str, Path],
    broker: str,
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    tmp_path: Path,
) -> None:
    registry = world["registry"]
    reference = pd.concat(
        [pd.read_csv(tmp_path / "run-v1" / f"val_{h}.csv") for h in ("sentiment", "topic")]
    )["text"].tolist()
    slang = _slang()
    alerts_yml = next(p for p in RULE_FILES if p.name == "alerts.yml")
    rules = [p for p in RULE_FILES if p != alerts_yml]
    rules.append(rules_without_wait(alerts_yml, tmp_path / "alerts.yml", GROUP))
    scorer = Scorer(tmp_path, broker, topics, registry)
    try:
        with monitoring(tmp_path, scorer.target, rule_files=rules) as prometheus:
            _drift_fires(prometheus, scorer, kafka_settings, topics, reference, slang)
            candidate = _feedback_retrain_and_gate(world, tmp_path, broker, topics, slang)
            _swap_mid_stream(
                prometheus, scorer, kafka_settings, topics, registry, candidate,
                [t for pair in zip(reference, [s for s, _ in slang], strict=False) for t in pair],
            )  # fmt: skip
    finally:
        scorer.stop()


def _drift_fires(
    prometheus: Prometheus,
    scorer: Scorer,
    kafka: KafkaSettings,
    topics: TopicNames,
    reference: list[str],
    slang: list[tuple[str, str]],
) -> None:
    """Part 1: quiet on the reference texts, the drift rules firing on the slang."""
    _send(kafka, topics.raw_news, [(f"usual-{i}", reference[i % len(reference)])
                                   for i in range(WINDOW)])  # fmt: skip
    wait_for("the scorer to score the usual news", lambda: scorer.scored() == WINDOW, timeout_s=120)
    wait_for(
        "a full drift window in Prometheus",
        lambda: bool(prometheus.query(f"finsentinel_scorer_drift_window_documents == {WINDOW}")),
        timeout_s=120,
    )
    scraped_at = _value(prometheus, "timestamp(finsentinel_scorer_drift_window_documents)")
    wait_for(
        "the drift rules to be evaluated on it",
        lambda: _evaluated_after(prometheus, scraped_at + 1),
        timeout_s=60,
    )
    psi = 'finsentinel_scorer_drift_psi{head="sentiment"}'
    unknown = "finsentinel_scorer_unknown_token_ratio"
    psi_before, unknown_before = _value(prometheus, psi), _value(prometheus, unknown)
    assert psi_before < 0.25
    assert _firing(prometheus) == set()

    _send(kafka, topics.raw_news, [(f"shift-{i}", slang[i % len(slang)][0])
                                   for i in range(WINDOW)])  # fmt: skip
    wait_for(
        "FinSentinelPredictionDrift (sentiment) and FinSentinelInputDrift to fire",
        lambda: (
            {("FinSentinelPredictionDrift", "sentiment"), ("FinSentinelInputDrift", "")}
            <= _firing(prometheus)
        ),
        timeout_s=180,
    )
    assert _value(prometheus, psi) > 0.25 > psi_before
    assert _value(prometheus, unknown) > unknown_before + 0.02
    assert scorer.scored() == 2 * WINDOW


def _feedback_retrain_and_gate(
    world: dict[str, Path],
    tmp: Path,
    broker: str,
    topics: TopicNames,
    slang: list[tuple[str, str]],
) -> Path:
    """Parts 2 and 3: 50 corrections, two retrained candidates, the gate; returns the good one."""
    corrections = tmp / "corrections.jsonl"
    pd.DataFrame(
        [
            {"doc_id": f"shift-{i}", "text": text, "sentiment": label, "note": "slang"}
            for i, (text, label) in enumerate(slang[:50])
        ]
    ).to_json(corrections, orient="records", lines=True, force_ascii=False)
    store = tmp / "feedback.sqlite"
    out = _cli(
        "feedback", "import", str(corrections), "--store", str(store), "--model", str(world["v1"]),
        "--bootstrap-servers", broker, "--topic-prefix", topics.raw_news.split(".")[0],
    )  # fmt: skip
    assert "50 added" in out and f"published 50 correction(s) to {topics.feedback}" in out
    export = tmp / "feedback.jsonl"
    assert "wrote 50 corrections" in _cli("feedback", "export", str(export), "--store", str(store))

    better = _train_and_export(tmp, "v2", _recipe_files(world), world["base"], store)
    worse_recipe = _recipe(tmp / "shuffled", shuffle_sentiment=True)
    worse = _train_and_export(tmp, "v2-shuffled", worse_recipe, world["base"], store)
    gate = [
        "--data", str(world["recipe"]), "--feedback", str(export),
        "--val-fraction", str(VAL_FRACTION), "--seed", str(SEED),
    ]  # fmt: skip
    refused = _cli("models", "compare", str(world["v1"]), str(worse), *gate,
                   "--report", str(tmp / "worse.json"), code=3)  # fmt: skip
    assert "NOT promotable" in refused
    passed = _cli("models", "compare", str(world["v1"]), str(better), *gate,
                  "--report", str(tmp / "better.json"))  # fmt: skip
    assert "PROMOTABLE" in passed
    report = json.loads((tmp / "better.json").read_text())
    holdout = report["feedback_holdout"]["combined"]
    assert holdout["new_correct"] > holdout["old_correct"]
    out = _cli("models", "promote", str(world["registry"]), str(worse),
               "--report", str(tmp / "worse.json"), code=2)  # fmt: skip
    assert "failed the promotion gate" in out
    from models.registry import ModelRegistry

    assert ModelRegistry(world["registry"]).active_name() == "finsentinel-toy-v1"
    return better


def _recipe_files(world: dict[str, Path]) -> dict[str, Path]:
    from models.data import RECIPE_FILES

    return {head: world["recipe"] / name for head, name in RECIPE_FILES.items()}


def _swap_mid_stream(
    prometheus: Prometheus,
    scorer: Scorer,
    kafka: KafkaSettings,
    topics: TopicNames,
    registry: Path,
    candidate: Path,
    texts: list[str],
) -> None:
    """Part 4: promote while documents keep coming; count the output by document id."""
    stream = Stream(kafka, topics.raw_news, texts)
    wait_for("the stream to flow", lambda: scorer.scored() >= 2 * WINDOW + 10, timeout_s=120)
    out = _cli("models", "promote", str(registry), str(candidate),
               "--report", str(candidate.parent / "better.json"))  # fmt: skip
    assert "finsentinel-toy-v1 -> finsentinel-toy-v2" in out
    wait_for("the scorer to switch", lambda: scorer.model_versions() == {"v2"}, timeout_s=120)
    switched_at = len(stream.sent)
    wait_for("more documents after the switch", lambda: len(stream.sent) >= switched_at + 20,
             timeout_s=120)  # fmt: skip
    live = stream.finish()
    total = 2 * WINDOW + len(live)
    wait_for("every document scored", lambda: scorer.scored() >= total, timeout_s=180)
    wait_for(
        "Prometheus to see the new version",
        lambda: {s["metric"]["model_version"]
                 for s in prometheus.query("finsentinel_scorer_model_info")} == {"v2"},
        timeout_s=60,
    )  # fmt: skip

    scored = _read_scored(kafka, topics.scored, total)
    expected = [f"usual-{i}" for i in range(WINDOW)] + [f"shift-{i}" for i in range(WINDOW)]
    ids = Counter(doc.id for _, doc in scored)
    assert ids == Counter(expected + live), "a document lost or scored twice"
    version = {doc.id: doc.model_version for _, doc in scored}
    assert {version[i] for i in expected} == {"v1"}
    assert {version[i] for i in live[switched_at:]} == {"v2"}
    by_partition: dict[int, list[str]] = {}
    for partition, doc in scored:
        by_partition.setdefault(partition, []).append(doc.model_version)
    for partition, versions in by_partition.items():  # v1 ... then v2 ..., never back
        cut = versions.index("v2") if "v2" in versions else len(versions)
        assert versions == ["v1"] * cut + ["v2"] * (len(versions) - cut), partition
    assert scorer.scored() == total
    switches = scorer.samples()["finsentinel_scorer_model_switches_total"]
    assert {lab["outcome"]: v for lab, v in switches} == {"switched": 1.0, "failed": 0.0}
