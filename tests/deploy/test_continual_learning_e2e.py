"""Keeping the model current, end to end (issue 17's "done when").

On the embedded broker, with the tiny test encoder trained here in seconds:

1. a real scorer process (``python -m stream``) follows a model registry whose
   ACTIVE version is ``v1`` (trained on a small recipe, drift reference from its
   validation rows); a real Prometheus scrapes it with the shipped rules (the
   drift group's ``for:`` cut to 0s). The stream first carries the reference
   texts (no drift alert), then social-media slang with emoji, new tickers and a
   label mix of a meme rally: the drift metrics rise and the drift rules fire;
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
import random
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings
from tests.deploy.live import Prometheus, monitoring, rules_without_wait, wait_for
from tests.deploy.manifests import RULE_FILES
from tests.deploy.scorer_process import DocumentStream, ScorerProcess, read_scored, send_texts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW = 200  # the drift rules judge no window under 200 documents
GROUP = "finsentinel-model-drift"
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
# meme rally's label mix (4 positive templates to 2 negative and 1 neutral).
NEW_TICKERS = ["$ZORB", "$QUUX", "$FLRB", "$PLMB", "$BLRP", "$SNZL", "$WUBA", "$KROM", "$GLIP",
               "$YEET"]  # fmt: skip
SLANG = {
    "positive": ["{} to the moon 🚀 diamond hands 💎", "{} calls printing, lambo soon 🚀",
                 "{} squeeze incoming, apes strong 🦍", "gm {} wagmi, pump it 🚀🚀"],
    "negative": ["{} bagholders rekt again 🤡", "{} ngmi, puts printing 🤡"],
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
        *(["--feedback", str(feedback), "--feedback-weight", "4"] if feedback else []),
    )  # fmt: skip
    out = tmp / f"model-{version}"
    _cli(
        "export", "--run", str(run), "--out", str(out), "--name", "finsentinel-toy",
        "--version", version, "--variants", "fp32,int8", "--min-agreement", "0.8",
    )  # fmt: skip
    return out


def _value(prometheus: Prometheus, expr: str) -> float:
    return float(prometheus.query(expr)[0]["value"][1])


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
    scorer = ScorerProcess(tmp_path, broker, topics, registry, drift_window_documents=WINDOW)
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
    scorer: ScorerProcess,
    kafka: KafkaSettings,
    topics: TopicNames,
    reference: list[str],
    slang: list[tuple[str, str]],
) -> None:
    """Part 1: quiet on the reference texts, the drift rules firing on the slang."""
    usual = [(f"usual-{i}", reference[i % len(reference)]) for i in range(WINDOW)]
    send_texts(kafka, topics.raw_news, usual)
    wait_for("the scorer to score the usual news", lambda: scorer.scored() == WINDOW, timeout_s=120)
    wait_for(
        "a full drift window in Prometheus",
        lambda: bool(prometheus.query(f"finsentinel_scorer_drift_window_documents == {WINDOW}")),
        timeout_s=120,
    )
    scraped_at = _value(prometheus, "timestamp(finsentinel_scorer_drift_window_documents)")
    wait_for(
        "the drift rules to be evaluated on it",
        lambda: prometheus.evaluated_after(GROUP, scraped_at + 1),
        timeout_s=60,
    )
    psi = 'finsentinel_scorer_drift_psi{head="sentiment"}'
    unknown = "finsentinel_scorer_unknown_token_ratio"
    psi_before, unknown_before = _value(prometheus, psi), _value(prometheus, unknown)
    assert psi_before < 0.25
    assert prometheus.firing(_DRIFT_ALERTS) == set()

    shifted = [(f"shift-{i}", slang[i % len(slang)][0]) for i in range(WINDOW)]
    send_texts(kafka, topics.raw_news, shifted)
    wait_for(
        "FinSentinelPredictionDrift (sentiment) and FinSentinelInputDrift to fire",
        lambda: (
            {("FinSentinelPredictionDrift", "sentiment"), ("FinSentinelInputDrift", "")}
            <= prometheus.firing(_DRIFT_ALERTS)
        ),
        timeout_s=180,
    )
    assert _value(prometheus, psi) > 0.25 > psi_before
    assert _value(prometheus, unknown) > unknown_before + 0.02
    # The window can drift past 0.25 before the scorer's last batch of the 200 is in
    # (seen once: 392 of 400 scored when the alerts fired): wait for it. A lost or
    # repeated document is caught by the id count in part 4.
    wait_for("every shifted document scored", lambda: scorer.scored() == 2 * WINDOW, timeout_s=60)


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
    scorer: ScorerProcess,
    kafka: KafkaSettings,
    topics: TopicNames,
    registry: Path,
    candidate: Path,
    texts: list[str],
) -> None:
    """Part 4: promote while documents keep coming; count the output by document id."""
    stream = DocumentStream(kafka, topics.raw_news, texts)
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

    scored = read_scored(kafka, topics.scored, total)
    expected = [f"usual-{i}" for i in range(WINDOW)] + [f"shift-{i}" for i in range(WINDOW)]
    ids = Counter(doc.id for _, doc in scored)
    assert ids == Counter(expected + live), "a document lost or scored twice"
    version = {doc.id: doc.model_version for _, doc in scored}
    assert {version[i] for i in expected} == {"v1"}
    assert "v1" in {version[i] for i in live}  # the stream flowed before the promotion
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
