"""Real services with ``--json-logs``: every line they print is a JSON object.

Quotes (a dead-letter reason quotes the schema's choices), a traceback (a fatal
error at start-up carries it in ``exc_info``) and settings errors included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _env(broker: str, model_dir: Path, topics: TopicNames, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSENTINEL_", "KAFKA_"))}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=broker,
        FINSENTINEL_SCORER_MODEL_DIR=str(model_dir),
        FINSENTINEL_SCORER_PROVIDER="cpu",
        FINSENTINEL_SCORER_INTRA_OP_THREADS="1",
        FINSENTINEL_SCORER_METRICS_PORT="0",
        FINSENTINEL_TOPIC_PREFIX=topics.raw_news.split(".")[0],
    )
    env.update(extra)
    return env


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` parsed as a JSON object (fails on the first that is not)."""
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        entry = json.loads(line)  # raises on an invalid line: the test fails here
        assert isinstance(entry, dict), f"line {n} is not an object: {line}"
        assert {"ts", "level", "logger", "msg"} <= entry.keys(), line
        entries.append(entry)
    return entries


def test_python_m_stream_json_logs_are_valid_json_through_a_whole_run(
    broker: str,
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    group_id: str,
    tiny_model_dir: Path,
    kit: Any,
    tmp_path: Path,
) -> None:
    bad = b'{"id": "x\\"1\\"", "kind": "tweet"}'  # dead-lettered: the reason quotes 'news'
    kit.send(kafka_settings, [(topics.raw_news, b"x", bad)])
    kit.send_docs(kafka_settings, topics, [kit.raw_doc(i) for i in range(3)])
    log = tmp_path / "scorer.log"
    env = _env(broker, tiny_model_dir, topics, FINSENTINEL_SCORER_GROUP_ID=group_id)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stream", "--json-logs", "--log-level", "DEBUG"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            assert len(kit.read_topic(kafka_settings, topics.deadletter, 1, timeout_s=90)) == 1
            assert len(kit.read_topic(kafka_settings, topics.scored, 3, timeout_s=90)) == 3
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    entries = _json_lines(log.read_text())
    messages = [e["msg"] for e in entries]
    assert any("dead-lettering" in m and "'news'" in m for m in messages), messages
    assert any("received SIGTERM" in m for m in messages)
    assert {e["logger"] for e in entries} >= {"stream.runtime", "stream.scorer.batch"}


def test_a_fatal_error_is_one_json_record_with_its_traceback(
    broker: str, topics: TopicNames, group_id: str, tiny_model_dir: Path
) -> None:
    env = _env(
        broker, tiny_model_dir, topics, FINSENTINEL_SCORER_GROUP_ID=group_id,
        FINSENTINEL_SCORER_PROVIDER="cuda", FINSENTINEL_SCORER_REQUIRE_GPU="true",
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "finsentinel", "score", "--json-logs"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode == 0:
        pytest.skip("a usable GPU is present")
    assert done.returncode == 1, done.stderr[-3000:]
    entries = _json_lines(done.stdout + done.stderr)
    (fatal,) = [e for e in entries if e.get("exit_code") == 1]
    assert "GPU required but unavailable" in fatal["msg"]
    assert "FINSENTINEL_SCORER_REQUIRE_GPU" in fatal["msg"]
    assert fatal["exc_info"].startswith("Traceback (most recent call last):")
    assert "\n" in fatal["exc_info"] and "ProviderError" in fatal["exc_info"]


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["-m", "alerts", "--json-logs"], {"FINSENTINEL_ALERTS_WINDOWS_S": '["300",'}),
        (
            ["-m", "ingest"],
            {"FINSENTINEL_JSON_LOGS": "true", "FINSENTINEL_INGEST_ALIAS_FILES": "["},
        ),
        (["-m", "finsentinel", "archive", "--json-logs"], {"FINSENTINEL_ARCHIVE_INCLUDE_RAW": "x"}),
    ],
)
def test_a_settings_error_is_one_json_record(
    argv: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FINSENTINEL_", "KAFKA_"))}
    done = subprocess.run(
        [sys.executable, *argv], cwd=tmp_path, env={**clean, **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    (entry,) = _json_lines(done.stdout + done.stderr)
    variable = next(iter(env.keys() - {"FINSENTINEL_JSON_LOGS"}))
    assert entry["msg"].startswith(variable) and entry["exit_code"] == 2
