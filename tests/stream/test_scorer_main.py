"""``python -m stream`` as a real subprocess: SIGTERM finishes, commits and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _env(
    broker: str, model_dir: Path, group_id: str, topics: TopicNames, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSENTINEL_", "KAFKA_"))}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=broker,
        FINSENTINEL_SCORER_MODEL_DIR=str(model_dir),
        FINSENTINEL_SCORER_PROVIDER="cpu",
        FINSENTINEL_SCORER_INTRA_OP_THREADS="1",
        FINSENTINEL_SCORER_METRICS_PORT="0",
        FINSENTINEL_SCORER_GROUP_ID=group_id,
        FINSENTINEL_TOPIC_PREFIX=topics.raw_news.split(".")[0],
        FINSENTINEL_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def _committed(settings: KafkaSettings, group_id: str, topics: TopicNames) -> int:
    consumer = KafkaConsumer(**settings.client_kwargs(), group_id=group_id)
    try:
        return sum(
            consumer.committed(TopicPartition(t, p)) or 0
            for t in topics.raw
            for p in consumer.partitions_for_topic(t) or ()
        )
    finally:
        consumer.close()


def test_sigterm_finishes_the_batch_commits_and_exits_zero(
    broker: str,
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    tiny_model_dir: Path,
    kit: Any,
    tmp_path: Path,
) -> None:
    kit.send_docs(kafka_settings, topics, [kit.raw_doc(i) for i in range(10)])
    log = (tmp_path / "scorer.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream"],
        cwd=ROOT,
        env=_env(broker, tiny_model_dir, group_id, topics),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert len(kit.read_topic(kafka_settings, topics.scored, 10, timeout_s=90)) == 10
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "scorer.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert _committed(kafka_settings, group_id, topics) == 10
    assert "received SIGTERM" in (tmp_path / "scorer.log").read_text()


def test_require_gpu_without_one_exits_non_zero_with_a_clear_message(
    broker: str, topics: TopicNames, group_id: str, tiny_model_dir: Path
) -> None:
    env = _env(
        broker, tiny_model_dir, group_id, topics,
        FINSENTINEL_SCORER_PROVIDER="cuda", FINSENTINEL_SCORER_REQUIRE_GPU="true",
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "stream"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    if done.returncode == 0:
        pytest.skip("a usable GPU is present")
    assert done.returncode == 1
    assert "GPU required but unavailable" in done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_settings_exit_2_with_one_line(topics: TopicNames, tiny_model_dir: Path) -> None:
    env = _env("127.0.0.1:1", tiny_model_dir, "g", topics, FINSENTINEL_SCORER_PROVIDER="tpu")
    done = subprocess.run(
        [sys.executable, "-m", "stream"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "FINSENTINEL_SCORER_PROVIDER" in done.stderr
