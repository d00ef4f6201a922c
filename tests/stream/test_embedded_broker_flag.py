"""Services refuse to run without ``KAFKA_BOOTSTRAP_SERVERS`` unless ``--embedded-broker``.

A forgotten variable must not give a service a private in-memory broker that no
other process talks to, and a set one must not be overridden unnoticed by the
flag. Invalid ``KAFKA_*`` values are one line and exit 2 in every service.
``finsentinel score`` without a bootstrap address is covered in ``test_score_cli.py``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


def _app() -> typer.Typer:
    root = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @root.callback()
    def _root() -> None:
        """A stand-in for the root app's callback (which would configure logging)."""

    for name in ("ingest.cli", "alerts.cli", "stream.history.cli", "stream.scorer.cli"):
        importlib.import_module(name).register(root)
    return root


def _sources(tmp_path: Path) -> Path:
    files = tmp_path / "files"
    files.mkdir(exist_ok=True)
    path = tmp_path / "sources.yaml"
    path.write_text(
        f"sources:\n  - {{name: local, kind: files, path: {json.dumps(str(files))}}}\n",
        encoding="utf-8",
    )
    return path


def _commands(tmp: Path) -> dict[str, list[str]]:
    return {
        "score": ["score"],
        "crawl": ["crawl", "--sources", str(_sources(tmp))],
        "alert": ["alert", "--db", str(tmp / "alerts.sqlite")],
        "archive": ["archive", "--root-dir", str(tmp / "archive")],
        "replay": [
            "replay", "--archive", str(tmp / "archive"), "--from", "2026-01-05",
            "--to", "2026-01-06", "--to-topic", "replayed",
        ],
    }  # fmt: skip


@pytest.fixture
def no_bootstrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("FINSENTINEL_INGEST_STATE_DIR", str(tmp_path / "state"))


@pytest.mark.parametrize("command", ["crawl", "alert", "archive", "replay"])
@pytest.mark.usefixtures("no_bootstrap")
def test_service_without_bootstrap_exits_2_with_one_line(command: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), _commands(tmp_path)[command])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no Kafka bootstrap servers")
    assert "--embedded-broker" in lines[0]


@pytest.mark.parametrize("command", ["crawl", "alert", "archive", "replay"])
def test_every_service_documents_the_flag(command: str) -> None:
    result = CliRunner().invoke(_app(), [command, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    assert "--embedded-broker" in result.output and "never in production" in result.output


@pytest.mark.integration
@pytest.mark.usefixtures("no_bootstrap")
def test_embedded_broker_flag_starts_one_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args = [*_commands(tmp_path)["crawl"], "--once", "local", "--embedded-broker"]
    with caplog.at_level(logging.WARNING, logger="stream.kafka"):
        result = CliRunner().invoke(_app(), args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("throw-away in-memory broker" in m for m in warnings), warnings


def test_python_m_alerts_without_bootstrap_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "FINSENTINEL_"))}
    env["FINSENTINEL_ALERTS_DB_PATH"] = str(tmp_path / "alerts.sqlite")
    done = subprocess.run(
        [sys.executable, "-m", "alerts"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("error: no Kafka bootstrap servers")
    helped = subprocess.run(
        [sys.executable, "-m", "alerts", "--help"], cwd=ROOT, env={**env, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert helped.returncode == 0 and "--embedded-broker" in helped.stdout


#: Invalid ``KAFKA_*`` environments and the variable the one-line error must name.
BAD_KAFKA_ENV = {
    "sasl-incomplete": ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
    "not-an-integer": ({"KAFKA_REQUEST_TIMEOUT_MS": "soon"}, "KAFKA_REQUEST_TIMEOUT_MS"),
    "not-a-protocol": ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
}


@pytest.mark.parametrize("bad", list(BAD_KAFKA_ENV))
@pytest.mark.parametrize("command", ["score", "crawl", "alert", "archive", "replay"])
def test_invalid_kafka_setting_exits_2_with_one_line_naming_it(
    command: str, bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, variable = BAD_KAFKA_ENV[bad]
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # never reached
    monkeypatch.setenv("FINSENTINEL_INGEST_STATE_DIR", str(tmp_path / "state"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(_app(), _commands(tmp_path)[command])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert variable in lines[0]


@pytest.mark.parametrize("module", ["alerts", "stream", "ingest"])
def test_python_m_invalid_kafka_setting_exits_2_with_one_line(module: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "FINSENTINEL_"))}
    env |= {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "KAFKA_REQUEST_TIMEOUT_MS": "soon",
        "FINSENTINEL_ALERTS_DB_PATH": str(tmp_path / "alerts.sqlite"),
        "FINSENTINEL_INGEST_SOURCES_FILE": str(_sources(tmp_path)),
        "FINSENTINEL_INGEST_STATE_DIR": str(tmp_path / "state"),
    }
    done = subprocess.run(
        [sys.executable, "-m", module], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("error: KAFKA_REQUEST_TIMEOUT_MS: ")


@pytest.mark.integration
def test_embedded_broker_flag_with_bootstrap_servers_warns_it_is_ignored(
    broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", broker)
    monkeypatch.setenv("FINSENTINEL_INGEST_STATE_DIR", str(tmp_path / "state"))
    prefix = f"t{uuid.uuid4().hex[:10]}"
    args = [*_commands(tmp_path)["crawl"], "--once", "local", "--embedded-broker"]
    with caplog.at_level(logging.WARNING, logger="stream.kafka"):
        result = CliRunner().invoke(_app(), [*args, "--topic-prefix", prefix])
    assert result.exit_code == 0, result.output
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # and no throw-away broker was started
    assert "--embedded-broker is ignored" in warnings[0]
    assert f"KAFKA_BOOTSTRAP_SERVERS={broker} is set" in warnings[0]
