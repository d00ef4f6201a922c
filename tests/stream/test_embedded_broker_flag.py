"""Services refuse to run without ``KAFKA_BOOTSTRAP_SERVERS`` unless ``--embedded-broker``.

A forgotten variable must not give a service a private in-memory broker that no
other process talks to. ``finsentinel score`` is covered in ``test_score_cli.py``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
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

    for name in ("ingest.cli", "alerts.cli", "stream.replay_cli"):
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
